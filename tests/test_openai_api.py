"""The OpenAI-compatible routes over a real uvicorn server: httpx and the official openai client."""
from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from servers import TOKEN, LiveServer, live_server, token_server  # noqa: F401 (fixtures)

SEED_SOURCE = "000_218c33ea26fbfb53.txt"
DE_Q = "Wie viele nordkoreanische Soldaten kämpfen im Ukraine-Krieg?"
FOLLOW_UP_Q = "Und wie viele sind gefallen?"
REFUSE_Q = "What is the population of North Korea?"
CHAT_BODY = {"model": "beleg", "messages": [{"role": "user", "content": DE_Q}]}


@pytest.fixture(scope="module")
def http(live_server: LiveServer):  # noqa: F811
    with live_server.client() as client:
        yield client


@pytest.fixture(scope="module")
def plain(http: httpx.Client) -> dict[str, Any]:
    r = http.post("/v1/chat/completions", json=CHAT_BODY)
    assert r.status_code == 200, r.text
    return r.json()


def _stream(http: httpx.Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    with http.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line.strip()]
    assert all(line.startswith("data: ") for line in lines), lines
    assert lines[-1] == "data: [DONE]"
    return [json.loads(line[6:]) for line in lines[:-1]]


def test_completion_shape_usage_and_annotations(plain: dict[str, Any], seed_text: str) -> None:
    assert plain["object"] == "chat.completion" and plain["id"].startswith("chatcmpl-")
    assert plain["model"] == "beleg"
    choice = plain["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    content = choice["message"]["content"]
    assert "15'000" in content
    usage = plain["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    cites = plain["beleg"]["citations"]
    assert cites and plain["beleg"]["kind"] in ("answered", "candidates")
    for c in cites:
        assert c["quote"] == seed_text[c["start"]:c["end"]]
        assert f"[{c['n']}] {c['source']} {c['start']}-{c['end']}: «{c['quote']}»" in content
    notes = choice["message"]["annotations"]
    assert notes and len(notes) >= len(cites)
    by_n = {c["n"]: c for c in cites}
    for a in notes:  # each annotation marks one [n] in the content and carries its span
        assert a["type"] == "url_citation"
        u = a["url_citation"]
        marker = content[u["start_index"]:u["end_index"]]
        c = by_n[int(marker.strip("[]"))]
        assert (u["source"], u["start"], u["end"], u["quote"]) == (
            c["source"], c["start"], c["end"], c["quote"])
        assert u["quote"] == seed_text[u["start"]:u["end"]] and u["verified"] is True
        assert u["url"].endswith(f"/api/documents/{c['source']}#{c['start']}-{c['end']}")


def test_stream_matches_the_plain_answer(http: httpx.Client, plain: dict[str, Any]) -> None:
    chunks = _stream(http, {**CHAT_BODY, "stream_options": {"include_usage": True}})
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    *body, last_choice, usage_chunk = chunks
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
    assert content == plain["choices"][0]["message"]["content"]
    assert last_choice["choices"][0]["finish_reason"] == "stop"
    assert last_choice["beleg"] == plain["beleg"]
    assert last_choice["choices"][0]["delta"]["annotations"] == \
        plain["choices"][0]["message"]["annotations"]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"] == plain["usage"]


def test_stream_without_usage_has_no_usage_chunk(http: httpx.Client) -> None:
    chunks = _stream(http, CHAT_BODY)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c for c in chunks)


def test_history_and_content_parts(http: httpx.Client) -> None:
    body = {"model": "beleg", "messages": [
        {"role": "user", "content": [{"type": "text", "text": DE_Q}]},
        {"role": "assistant", "content": "Rund 15'000 Soldaten."},
        {"role": "user", "content": [{"type": "text", "text": FOLLOW_UP_Q}]}]}
    r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    assert "2000" in r.json()["choices"][0]["message"]["content"]


def test_refusal(http: httpx.Client) -> None:
    r = http.post("/v1/chat/completions", json={"messages": [
        {"role": "user", "content": REFUSE_Q}]})
    assert r.status_code == 200
    body = r.json()
    assert body["beleg"]["citations"] == [] and body["beleg"]["kind"] == "refused"
    assert body["choices"][0]["message"]["content"].strip()
    assert body["choices"][0]["message"]["annotations"] == []


def test_models_name_the_modes(http: httpx.Client) -> None:
    body = http.get("/v1/models").json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["beleg", "beleg-extractive"]
    r = http.post("/v1/chat/completions", json={**CHAT_BODY, "model": "beleg-extractive"})
    assert r.status_code == 200 and r.json()["beleg"]["mode"] == "extractive"


BAD = [
    ("unknown model", {"model": "gpt-4o", "messages": CHAT_BODY["messages"]}, 404,
     "model_not_found", "model", "beleg-extractive"),
    ("system message", {"messages": [{"role": "system", "content": "Be brief."},
                                     {"role": "user", "content": DE_Q}]}, 400,
     "unsupported_message_role", "messages[0].role", "system"),
    ("developer message", {"messages": [{"role": "developer", "content": "Be brief."},
                                        {"role": "user", "content": DE_Q}]}, 400,
     "unsupported_message_role", "messages[0].role", "developer"),
    ("tool message", {"messages": [{"role": "tool", "content": "x"},
                                   {"role": "user", "content": DE_Q}]}, 400,
     "invalid_message_role", "messages[0].role", "'user' or 'assistant'"),
    ("no messages", {"messages": []}, 400, "invalid_messages", "messages", "user"),
    ("last from the assistant", {"messages": [{"role": "user", "content": DE_Q},
                                              {"role": "assistant", "content": "x"}]}, 400,
     "invalid_messages", "messages", "last message"),
    ("empty question", {"messages": [{"role": "user", "content": "  "}]}, 400,
     "invalid_question", "messages", "empty"),
    ("messages not a list", {"messages": "Wie viele?"}, 422, None, "messages", "valid list"),
]


@pytest.mark.parametrize("body,status,code,param,words", [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])
def test_errors_in_openai_shape(http: httpx.Client, body: dict[str, Any], status: int,
                                code: str | None, param: str, words: str) -> None:
    r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param and (code is None or error["code"] == code)
    assert words in error["message"], error["message"]


def test_sdk_against_a_token_server(token_server: LiveServer) -> None:  # noqa: F811
    client = openai.OpenAI(base_url=token_server.url + "/v1", api_key=TOKEN, max_retries=0,
                           timeout=180, http_client=httpx.Client(trust_env=False, timeout=180))
    assert [m.id for m in client.models.list()] == ["beleg", "beleg-extractive"]

    resp = client.chat.completions.create(model="beleg", messages=CHAT_BODY["messages"])
    message = resp.choices[0].message
    assert message.content and "15'000" in message.content
    assert f"[1] {SEED_SOURCE}" in message.content
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and resp.usage.completion_tokens > 0
    assert message.annotations and message.annotations[0].type == "url_citation"
    first = message.annotations[0].url_citation
    assert message.content[first.start_index:first.end_index] == "[1]"
    assert SEED_SOURCE in first.url

    stream = client.chat.completions.create(model="beleg", messages=CHAT_BODY["messages"],
                                            stream=True, stream_options={"include_usage": True})
    pieces, usage = [], None
    for chunk in stream:
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
        if chunk.usage is not None:
            usage = chunk.usage
    assert "".join(pieces) == message.content
    assert usage is not None and usage.total_tokens == resp.usage.total_tokens

    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-4o", messages=CHAT_BODY["messages"])
    assert missing.value.code == "model_not_found" and "beleg" in missing.value.message
    with pytest.raises(openai.BadRequestError) as system:
        client.chat.completions.create(model="beleg", messages=[
            {"role": "system", "content": "Be brief."}, *CHAT_BODY["messages"]])
    assert "system" in system.value.message and system.value.param == "messages[0].role"

    bad = openai.OpenAI(base_url=token_server.url + "/v1", api_key="wrong", max_retries=0,
                        http_client=httpx.Client(trust_env=False, timeout=60))
    with pytest.raises(openai.AuthenticationError) as denied:
        bad.models.list()
    assert denied.value.code == "invalid_api_key" and "token" in denied.value.message
