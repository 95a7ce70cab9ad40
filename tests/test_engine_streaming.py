"""Generated answers stream verified sentences while the model is still writing."""
from __future__ import annotations

import threading
from typing import Any

from app.engine import AnswerEngine
from app.llm import ChatResult

QUESTION = "How many North Korean soldiers have died?"


class GatedLLM:
    """Writes one sentence, then waits until the test has seen it before writing the next."""

    name = "gated"
    model = "gated"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.finished = threading.Event()

    def chat(self, messages: list[dict[str, str]], *, max_tokens: int = 384,
             temperature: float = 0.0, on_token: Any = None, timeout: float | None = None,
             grammar: str | None = None
             ) -> ChatResult:
        first = "About 2000 North Korean soldiers have died [1]. "
        second = "Russia cultivates a growing dependence of Pyongyang [2]."
        on_token(first)
        assert self.release.wait(20), "the engine never showed the first sentence"
        on_token(second)
        self.finished.set()
        return ChatResult(first + second, "gated", None, None, None, 0.0)

    def health(self) -> dict[str, object]:
        return {"backend": "gated", "model": "gated", "ok": True, "detail": ""}


def test_first_sentence_arrives_before_the_model_finishes(seed_engine: Any, answering_selector: Any) -> None:
    llm = GatedLLM()
    engine = AnswerEngine(seed_engine.retriever, answering_selector, llm=llm)
    events = engine.stream(QUESTION)
    assert next(events).kind == "sources"
    first = next(events)
    assert first.kind == "token" and "2000" in first.data
    assert not llm.finished.is_set()  # the model is still blocked on its second sentence
    llm.release.set()
    rest = list(events)
    assert rest[-1].kind == "final"
    assert llm.finished.is_set()
    answer = rest[-1].data
    assert answer.mode == "gated" and "2000" in answer.answer


class ScriptedLLM:
    """Streams a fixed reply in small pieces."""

    name = "scripted"
    model = "scripted"

    def __init__(self, reply: str) -> None:
        self.reply = reply

    def chat(self, messages: list[dict[str, str]], *, max_tokens: int = 384,
             temperature: float = 0.0, on_token: Any = None, timeout: float | None = None,
             grammar: str | None = None
             ) -> ChatResult:
        for k in range(0, len(self.reply), 5):
            on_token(self.reply[k:k + 5])
        return ChatResult(self.reply, "scripted", None, None, None, 0.0)

    def health(self) -> dict[str, object]:
        return {"backend": "scripted", "model": "scripted", "ok": True, "detail": ""}


def _answer(seed_engine: Any, answering_selector: Any, reply: str, question: str = QUESTION) -> Any:
    engine = AnswerEngine(seed_engine.retriever, answering_selector, llm=ScriptedLLM(reply))
    return engine.ask(question)


def test_terse_figure_answer_is_checked_against_the_best_passage(seed_engine: Any, answering_selector: Any,
                                                                 seed_text: str) -> None:
    a = _answer(seed_engine, answering_selector, "2000 [1]")
    assert a.mode == "scripted" and a.answer.startswith("2000")
    (c,) = a.citations
    assert "2000" in c.quote and seed_text[c.start:c.end] == c.quote


def test_terse_answer_with_a_figure_the_passages_lack_is_removed(seed_engine: Any,
                                                                 answering_selector: Any) -> None:
    a = _answer(seed_engine, answering_selector, "25000 [1]")
    assert "25000" not in a.answer
    assert a.unverified and "25000" in a.unverified[0]
    assert a.mode == "extractive"  # nothing verified: the sources are quoted instead


def test_marker_after_the_period_is_not_reported(seed_engine: Any, answering_selector: Any) -> None:
    a = _answer(seed_engine, answering_selector, "About 2000 North Korean soldiers have died. [1]")
    assert a.mode == "scripted" and "2000" in a.answer
    assert a.unverified == []
