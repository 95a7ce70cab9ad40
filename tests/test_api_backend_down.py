"""The API when the LLM backend is down: health says degraded, answers fall back to quotes."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from servers import LiveServer, serve

DE_Q = "Wie viele nordkoreanische Soldaten kämpfen im Ukraine-Krieg?"
EN_Q = "How many North Korean soldiers have died?"
DETAIL = "connection refused"


class DownLLM:
    """An OpenAI-style backend whose server refuses every connection."""

    name = "openai"
    model = "x"

    def __init__(self) -> None:
        self.calls = 0

    def chat(self, messages: list[dict[str, str]], **kwargs: Any) -> Any:
        from app.llm import BackendUnavailable

        self.calls += 1
        raise BackendUnavailable(DETAIL, backend="openai")

    def health(self) -> dict[str, object]:
        return {"backend": "openai", "model": "x", "ok": False, "detail": DETAIL}


@pytest.fixture(scope="module")
def down_llm() -> DownLLM:
    return DownLLM()


@pytest.fixture(scope="module")
def down_server(seed_engine: Any, answering_selector: Any,
                down_llm: DownLLM) -> Iterator[LiveServer]:
    from app.api import create_app
    from app.engine import AnswerEngine

    engine = AnswerEngine(seed_engine.retriever, answering_selector, llm=down_llm)
    with serve(create_app(engine, with_ui=False)) as server:
        yield server


@pytest.fixture(scope="module")
def http(down_server: LiveServer) -> Iterator[httpx.Client]:
    with down_server.client() as client:
        yield client


def test_health_is_degraded(http: httpx.Client) -> None:
    r = http.get("/api/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "degraded"
    assert body["mode"] == "openai"
    assert body["llm"] == {"backend": "openai", "model": "x", "ok": False, "detail": DETAIL}
    assert "openai" in body["detail"] and "extractive" in body["detail"]
    assert body["documents"] == 1


@pytest.mark.parametrize("question,figure,language,words", [
    (DE_Q, "15'000", "de", "Sprachmodell"),
    (EN_Q, "2000", "en", "language model"),
], ids=["de", "en"])
def test_ask_falls_back_to_extractive(http: httpx.Client, down_llm: DownLLM, seed_text: str,
                                      question: str, figure: str, language: str,
                                      words: str) -> None:
    calls = down_llm.calls
    r = http.post("/api/ask", json={"question": question})
    assert r.status_code == 200, r.text
    body = r.json()
    assert down_llm.calls == calls + 1  # the backend was tried
    assert body["mode"] == "extractive"
    assert body["refused"] is False and body["language"] == language
    assert body["notice"].strip() and words in body["notice"] and DETAIL in body["notice"]
    assert figure in body["answer"]
    assert body["citations"]
    for c in body["citations"]:
        assert c["quote"] == seed_text[c["start"]:c["end"]]


def test_stream_falls_back_too(http: httpx.Client) -> None:
    r = http.post("/api/ask", params={"stream": "true"}, json={"question": EN_Q})
    assert r.status_code == 200
    text = r.text
    assert text.startswith("event: sources\n")
    assert "event: token\n" in text
    final_block = text.strip().split("\n\n")[-1]
    assert final_block.startswith("event: final\n")
    assert '"mode": "extractive"' in final_block and '"notice": "Note:' in final_block


def test_explicit_extractive_mode_does_not_touch_the_backend(http: httpx.Client,
                                                             down_llm: DownLLM) -> None:
    calls = down_llm.calls
    r = http.post("/api/ask", json={"question": EN_Q, "mode": "extractive"})
    assert r.status_code == 200
    body = r.json()
    assert down_llm.calls == calls
    assert body["mode"] == "extractive" and body["notice"] == "" and body["citations"]


def test_refusal_does_not_call_the_backend(http: httpx.Client, down_llm: DownLLM) -> None:
    calls = down_llm.calls
    body = http.post("/api/ask", json={"question": "What is the population of North Korea?"}
                     ).json()
    assert body["refused"] is True and body["citations"] == []
    assert down_llm.calls == calls


def test_chat_completions_fall_back(http: httpx.Client) -> None:
    r = http.post("/v1/chat/completions", json={"model": "beleg", "messages": [
        {"role": "user", "content": DE_Q}]})
    assert r.status_code == 200
    body = r.json()
    assert "15'000" in body["choices"][0]["message"]["content"]
    assert body["beleg"]["citations"]


def test_chat_completions_carry_the_fallback_notice(http: httpx.Client) -> None:
    r = http.post("/v1/chat/completions", json={"model": "beleg", "messages": [
        {"role": "user", "content": EN_Q}]})
    assert r.status_code == 200
    assert DETAIL in r.json()["choices"][0]["message"]["content"]
