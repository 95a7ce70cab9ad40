"""The HTTP contract of app/api.py, over a real uvicorn server with httpx (and the openai SDK)."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from servers import TOKEN, LiveServer, live_server, token_server  # noqa: F401 (fixtures)

SEED_SOURCE = "000_218c33ea26fbfb53.txt"
DE_Q = "Wie viele nordkoreanische Soldaten kämpfen im Ukraine-Krieg?"
EN_Q = "How many North Korean soldiers have died?"
REFUSE_Q = "What is the population of North Korea?"
FOLLOW_UP_Q = "Und wie viele sind gefallen?"

CONTRACT_KEYS = {"answer", "refused", "mode", "citations", "language"}
CITATION_KEYS = {"n", "source", "start", "end", "quote"}
HIT_KEYS = {"source", "start", "end", "score", "text"}
TIMINGS = ("retrieval_ms", "first_token_ms", "total_ms")


@pytest.fixture(scope="module")
def http(live_server: LiveServer):  # noqa: F811
    with live_server.client() as client:
        yield client


@pytest.fixture(scope="module")
def ask(http: httpx.Client):
    """POST /api/ask once per question (asks are slow on a busy CPU); returns the JSON body."""
    cache: dict[str, dict[str, Any]] = {}

    def _ask(question: str) -> dict[str, Any]:
        if question not in cache:
            r = http.post("/api/ask", json={"question": question})
            assert r.status_code == 200, r.text
            assert r.headers["content-type"].startswith("application/json")
            cache[question] = r.json()
        return cache[question]

    return _ask


def parse_sse(body: str) -> list[tuple[str, Any]]:
    """`event: x` / `data: json` blocks -> [(event, data)]."""
    events = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            key, _, value = line.partition(":")
            fields[key] = fields.get(key, "") + value.removeprefix(" ")
        events.append((fields.get("event", "message"), json.loads(fields["data"])))
    return events


def without_timings(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in TIMINGS}


def assert_contract(body: dict[str, Any], seed_text: str) -> None:
    assert CONTRACT_KEYS <= body.keys(), body.keys()
    assert isinstance(body["answer"], str) and body["answer"].strip()
    assert isinstance(body["refused"], bool)
    assert body["mode"] == "extractive"
    assert isinstance(body["citations"], list)
    for c in body["citations"]:
        assert set(c) == CITATION_KEYS, c
        assert c["source"] == SEED_SOURCE
        assert isinstance(c["n"], int) and c["n"] >= 1
        assert 0 <= c["start"] < c["end"] <= len(seed_text)
        assert c["quote"] == seed_text[c["start"]:c["end"]]
        assert f"[{c['n']}]" in body["answer"]


# --- health ------------------------------------------------------------------------------------

def test_health(http: httpx.Client) -> None:
    r = http.get("/api/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["mode"] == "extractive"
    assert body["documents"] == 1 and body["chunks"] >= 1
    assert "llm" not in body


# --- /api/ask ----------------------------------------------------------------------------------

def test_ask_german(ask, seed_text: str) -> None:
    body = ask(DE_Q)
    assert_contract(body, seed_text)
    assert body["refused"] is False and body["language"] == "de"
    assert "15'000" in body["answer"]
    assert body["citations"] and any("15'000" in c["quote"] for c in body["citations"])


def test_ask_english(ask, seed_text: str) -> None:
    body = ask(EN_Q)
    assert_contract(body, seed_text)
    assert body["refused"] is False and body["language"] == "en"
    assert "2000" in body["answer"]
    assert any("2000" in c["quote"] and "gefallen" in c["quote"] for c in body["citations"])


def test_ask_refusal(ask, seed_text: str) -> None:
    body = ask(REFUSE_Q)
    assert_contract(body, seed_text)
    assert body["refused"] is True
    assert body["citations"] == []
    assert body["language"] == "en"


def test_citation_offsets_match_the_document_endpoint(http: httpx.Client, ask) -> None:
    r = http.get(f"/api/documents/{SEED_SOURCE}")
    assert r.status_code == 200
    text = r.json()["text"]
    for c in ask(DE_Q)["citations"] + ask(EN_Q)["citations"]:
        assert text[c["start"]:c["end"]] == c["quote"]


def test_documents_listing_and_unknown_document(http: httpx.Client) -> None:
    docs = http.get("/api/documents").json()["documents"]
    assert [d["source"] for d in docs] == [SEED_SOURCE]
    r = http.get("/api/documents/nope.txt")
    assert r.status_code == 404 and "nope.txt" in r.json()["detail"]


def test_follow_up_with_history(http: httpx.Client, ask, seed_text: str) -> None:
    first = ask(DE_Q)
    history = [{"role": "user", "content": DE_Q}, {"role": "assistant", "content": first["answer"]}]
    r = http.post("/api/ask", json={"question": FOLLOW_UP_Q, "history": history})
    assert r.status_code == 200, r.text
    body = r.json()
    assert_contract(body, seed_text)
    assert body["refused"] is False and body["language"] == "de"
    assert "2000" in body["answer"]
    assert any("gefallen" in c["quote"] for c in body["citations"])


def test_stream_events(http: httpx.Client, ask) -> None:
    with http.stream("POST", "/api/ask", params={"stream": "true"},
                     json={"question": EN_Q}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(r.read().decode("utf-8"))
    kinds = [k for k, _ in events]
    assert kinds[0] == "sources"
    assert kinds[-1] == "final"
    assert kinds.count("final") == 1 and kinds.count("sources") == 1
    assert "token" in kinds and set(kinds[1:-1]) == {"token"}

    sources = events[0][1]
    assert sources and [s["n"] for s in sources] == list(range(1, len(sources) + 1))
    assert all({"n", "source", "start", "end", "score", "text"} <= s.keys() for s in sources)

    final = events[-1][1]
    assert "".join(d["text"] for k, d in events if k == "token") == final["answer"]
    assert final["sources"] == sources
    # The final event is the same contract object /api/ask returns (timings aside).
    assert without_timings(final) == without_timings(ask(EN_Q))


def test_stream_validates_before_streaming(http: httpx.Client) -> None:
    r = http.post("/api/ask", params={"stream": "true"}, json={"question": "  "})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/json")
    assert "empty" in r.json()["detail"]


def test_concurrent_asks(live_server: LiveServer, ask) -> None:  # noqa: F811
    """The engine claims to be thread-safe; the server runs sync endpoints in a thread pool."""
    questions = [DE_Q, EN_Q, DE_Q]

    def one(q: str) -> dict[str, Any]:
        with live_server.client() as c:
            r = c.post("/api/ask", json={"question": q})
            assert r.status_code == 200, r.text
            return r.json()

    with ThreadPoolExecutor(len(questions)) as pool:
        results = list(pool.map(one, questions))
    for q, body in zip(questions, results):
        assert without_timings(body) == without_timings(ask(q)), q


# --- /api/search -------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 3])
def test_search(http: httpx.Client, seed_text: str, k: int) -> None:
    r = http.post("/api/search", json={"query": "nordkoreanische Soldaten gefallen", "k": k})
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    assert len(hits) == k
    for h in hits:
        assert HIT_KEYS <= h.keys()
        assert h["source"] == SEED_SOURCE
        assert h["text"] == seed_text[h["start"]:h["end"]]
        assert isinstance(h["score"], float)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert "gefallen" in hits[0]["text"]


# --- bad requests ------------------------------------------------------------------------------

BAD_REQUESTS = [
    # (id, path, json body or raw bytes, words expected in detail)
    ("empty-question", "/api/ask", {"question": ""}, "empty"),
    ("whitespace-question", "/api/ask", {"question": " \n\t "}, "empty"),
    ("question-2001-chars", "/api/ask", {"question": "x" * 2001}, "2000"),
    ("missing-question", "/api/ask", {}, "question"),
    ("question-not-a-string", "/api/ask", {"question": 5}, "question"),
    ("question-list", "/api/ask", {"question": ["a"]}, "question"),
    ("history-not-a-list", "/api/ask", {"question": "hi", "history": "abc"}, "history"),
    ("history-bad-role", "/api/ask",
     {"question": "hi", "history": [{"role": "system", "content": "x"}]}, "history"),
    ("history-content-not-str", "/api/ask",
     {"question": "hi", "history": [{"role": "user", "content": 5}]}, "history"),
    ("unknown-mode", "/api/ask", {"question": "hi", "mode": "local"}, "mode"),
    ("malformed-json", "/api/ask", b'{"question": "hi"', "json"),
    ("json-array-body", "/api/ask", b"[]", "malformed"),
    ("search-k-0", "/api/search", {"query": "Soldaten", "k": 0}, "k must be"),
    ("search-k-1000", "/api/search", {"query": "Soldaten", "k": 1000}, "k must be"),
    ("search-k-string", "/api/search", {"query": "Soldaten", "k": "a"}, "k"),
    ("search-k-float", "/api/search", {"query": "Soldaten", "k": 2.5}, "k"),
    ("search-empty-query", "/api/search", {"query": "  ", "k": 3}, "empty"),
    ("search-query-2001-chars", "/api/search", {"query": "x" * 2001, "k": 3}, "2000"),
    ("search-malformed-json", "/api/search", b"{query", "json"),
]


@pytest.mark.parametrize("path,body,words", [b[1:] for b in BAD_REQUESTS],
                         ids=[b[0] for b in BAD_REQUESTS])
def test_bad_request(http: httpx.Client, path: str, body: Any, words: str) -> None:
    if isinstance(body, bytes):
        r = http.post(path, content=body, headers={"content-type": "application/json"})
    else:
        r = http.post(path, json=body)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail.strip()
    assert words.lower() in detail.lower(), detail
    assert "Traceback" not in detail
    assert http.get("/api/health").status_code == 200


def test_still_answers_after_bad_requests(http: httpx.Client, seed_text: str) -> None:
    for body in ({"question": ""}, {"question": 5}):
        assert http.post("/api/ask", json=body).status_code in (400, 422)
    r = http.post("/api/ask", json={"question": EN_Q})
    assert r.status_code == 200
    assert_contract(r.json(), seed_text)
    assert "2000" in r.json()["answer"]


# --- auth --------------------------------------------------------------------------------------

PROTECTED = [
    ("POST", "/api/ask", {"question": EN_Q}),
    ("POST", "/api/search", {"query": "Soldaten", "k": 2}),
    ("GET", "/api/documents", None),
    ("GET", f"/api/documents/{SEED_SOURCE}", None),
    ("GET", "/v1/models", None),
    ("POST", "/v1/chat/completions", {"model": "beleg", "messages": [
        {"role": "user", "content": EN_Q}]}),
]


@pytest.mark.parametrize("method,path,body", PROTECTED, ids=[f"{m} {p}" for m, p, _ in PROTECTED])
def test_auth_required(token_server: LiveServer, method: str, path: str,  # noqa: F811
                       body: Any) -> None:
    kwargs = {"json": body} if body is not None else {}
    with token_server.client(token="") as anon:
        r = anon.request(method, path, **kwargs)
        assert r.status_code == 401, r.text
        assert r.headers.get("www-authenticate") == "Bearer"
        body = r.json()
        # /api says {"detail"}; /v1 speaks OpenAI's error shape, which its clients read
        message = body["error"]["message"] if path.startswith("/v1/") else body["detail"]
        assert "token" in message
        if path.startswith("/v1/"):
            assert body["error"]["code"] == "invalid_api_key"
        for header in ("Bearer wrong", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, "Bearer"):
            r = anon.request(method, path, headers={"Authorization": header}, **kwargs)
            assert r.status_code == 401, (header, r.text)
    with token_server.client() as authed:
        r = authed.request(method, path, **kwargs)
        assert r.status_code == 200, r.text


def test_auth_scheme_is_case_insensitive(token_server: LiveServer) -> None:  # noqa: F811
    with token_server.client(token="") as anon:
        r = anon.get("/v1/models", headers={"Authorization": f"bearer {TOKEN}"})
        assert r.status_code == 200


def test_health_is_open_with_token(token_server: LiveServer) -> None:  # noqa: F811
    with token_server.client(token="") as anon:
        r = anon.get("/api/health")
        assert r.status_code == 200 and r.json()["status"] == "ok"


@pytest.mark.parametrize("header", ["Bearer s3crét".encode("latin-1"), b"Bearer \xe2\x82\xac"],
                         ids=["latin1", "utf8-bytes"])
def test_non_ascii_token_is_401_not_500(token_server: LiveServer,  # noqa: F811
                                        header: bytes) -> None:
    with token_server.client(token="") as anon:
        r = anon.get("/v1/models", headers={"Authorization": header})
        assert r.status_code == 401, r.text


