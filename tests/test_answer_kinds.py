"""The engine's answer kinds over a real Chroma store with the fake embedder and an explicit
calibration: answered (with an exact short answer), candidates, refused, conflicts, and the
model's grammar-constrained copy of the short answer."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from app.answer.calibration import Calibration
from app.answer.features import FEATURES
from app.answer.selection import Selector
from app.engine import AnswerEngine
from app.llm_base import BackendUnavailable, ChatResult
from ingest.documents import Document
from store.retrieval import HybridRetriever

PUMP = ("Wartung der Pumpe. Die Dichtung der Pumpe ist nach 2000 Betriebsstunden zu ersetzen. "
        "Der Filter wird monatlich gereinigt.")
OTHER = "Reisekosten. Hotelkosten werden bis 120 Euro pro Nacht erstattet."
PLANTED = "Hinweis. Die Dichtung der Pumpe ist nach 500 Betriebsstunden zu ersetzen."


def overlap_calibration(answer: float = 0.9, candidates: float = 0.3) -> Calibration:
    """A stand-in for a fitted model: the probability rises with the sentence's share of the
    question's stems (what the real fit also weighs), so kinds are predictable in a test."""
    w = np.zeros(len(FEATURES))
    w[FEATURES.index("overlap")] = 12.0
    w[FEATURES.index("bias")] = -6.0
    zeros, ones = tuple([0.0] * len(FEATURES)), tuple([1.0] * len(FEATURES))
    return Calibration("fake-hash", tuple(w), zeros, ones, answer, candidates)


def make_engine(library: Any, docs: list[Document], llm: Any = None) -> AnswerEngine:
    for d in docs:
        library.add_document(d)
    retriever = HybridRetriever(library.store, library.embedder)
    return AnswerEngine(retriever, Selector(overlap_calibration()), llm=llm)


@pytest.fixture
def engine(fake_library: Any) -> AnswerEngine:
    return make_engine(fake_library, [Document("pump.txt", PUMP, {}),
                                      Document("travel.txt", OTHER, {})])


def test_answered_has_an_exact_short_answer(engine: AnswerEngine) -> None:
    a = engine.ask("Nach wie vielen Betriebsstunden ist die Dichtung der Pumpe zu ersetzen?")
    assert a.kind == "answered" and not a.refused
    sa = a.short_answer
    assert sa is not None and sa.method == "typed"
    assert sa.text == "2000 Betriebsstunden"
    assert PUMP[sa.start:sa.end] == sa.text and sa.source == "pump.txt"
    assert a.answer.startswith("2000 Betriebsstunden [")
    d = a.to_dict()
    assert d["kind"] == "answered" and d["short_answer"]["start"] == sa.start
    assert 0.9 <= d["confidence"] <= 1.0
    (c,) = a.citations
    assert PUMP[c.start:c.end] == c.quote and sa.text in c.quote


def test_weak_evidence_gives_candidates(engine: AnswerEngine) -> None:
    a = engine.ask("Wann wird der Filter gespült?")
    assert a.kind == "candidates" and not a.refused and a.short_answer is None
    assert "keine eindeutige Antwort" in a.answer
    assert 1 <= len(a.citations) <= 3
    assert all(f"[{c.n}]" in a.answer for c in a.citations)


def test_candidates_come_best_first(fake_library: Any) -> None:
    """The quoted passages keep the selection's ranking, not the documents' order."""
    text = ("Die Pumpe steht im Keller. Sie wurde 2019 eingebaut. "
            "Der Filter der Pumpe wird monatlich gereinigt.")
    engine = make_engine(fake_library, [Document("pump.txt", text, {})])
    engine.selector = Selector(overlap_calibration(answer=2.0, candidates=0.0))
    a = engine.ask("Wie oft wird der Filter der Pumpe gereinigt?")
    assert a.kind == "candidates" and len(a.citations) >= 2
    assert "monatlich" in a.citations[0].quote  # the best match, though last in the text
    assert a.answer.index("monatlich") < a.answer.index("Keller")


def test_nothing_on_topic_is_refused(engine: AnswerEngine) -> None:
    a = engine.ask("What colour are the bananas in Peru?")
    assert a.kind == "refused" and a.refused and a.citations == [] and a.short_answer is None


def test_conflicting_documents_are_shown_as_a_conflict(fake_library: Any) -> None:
    engine = make_engine(fake_library, [Document("pump.txt", PUMP, {}),
                                        Document("planted.txt", PLANTED, {})])
    a = engine.ask("Nach wie vielen Betriebsstunden ist die Dichtung der Pumpe zu ersetzen?")
    assert a.conflict and a.kind == "candidates" and a.short_answer is None
    assert "widersprechen sich" in a.answer
    quotes = " ".join(c.quote for c in a.citations)
    assert "2000 Betriebsstunden" in quotes and "500 Betriebsstunden" in quotes
    assert {c.source for c in a.citations} == {"pump.txt", "planted.txt"}


class CopyLLM:
    """Answers the grammar-constrained copy with ``copy`` and the statement with ``statement``."""

    name = model = "copy"

    def __init__(self, copy: str, statement: str = "", error: Exception | None = None) -> None:
        self.copy, self.statement, self.error = copy, statement, error
        self.grammars: list[str | None] = []

    def chat(self, messages: list[dict[str, str]], *, max_tokens: int = 384,
             temperature: float = 0.0, on_token: Any = None, timeout: float | None = None,
             grammar: str | None = None) -> ChatResult:
        self.grammars.append(grammar)
        if self.error is not None:
            raise self.error
        text = self.copy if grammar else self.statement
        if on_token is not None:
            on_token(text)
        return ChatResult(text, "copy", None, None, None, 1.0)

    def health(self) -> dict[str, object]:
        return {"backend": "copy", "model": "copy", "ok": True, "detail": ""}


def test_model_copies_the_short_answer_out_of_the_sentence(fake_library: Any) -> None:
    llm = CopyLLM("monatlich")
    engine = make_engine(fake_library, [Document("pump.txt", PUMP, {})], llm=llm)
    a = engine.ask("Was wird mit dem Filter monatlich gemacht, wird er gereinigt?")
    assert a.kind == "answered"
    assert llm.grammars and llm.grammars[0] and llm.grammars[0].startswith("root ::= w0")
    sa = a.short_answer
    assert sa is not None and sa.method == "copied" and sa.text == "monatlich"
    assert PUMP[sa.start:sa.end] == "monatlich"


def test_a_copy_that_is_not_in_the_sentence_is_ignored(fake_library: Any) -> None:
    engine = make_engine(fake_library, [Document("pump.txt", PUMP, {})],
                         llm=CopyLLM("jede Woche"))
    a = engine.ask("Was wird mit dem Filter monatlich gemacht, wird er gereinigt?")
    assert a.short_answer is not None and a.short_answer.method == "sentence"


def test_dead_model_keeps_the_quoted_answer(fake_library: Any) -> None:
    llm = CopyLLM("", error=BackendUnavailable("connection refused", backend="copy"))
    engine = make_engine(fake_library, [Document("pump.txt", PUMP, {})], llm=llm)
    a = engine.ask("Was wird mit dem Filter monatlich gemacht, wird er gereinigt?")
    assert a.kind == "answered" and "connection refused" in a.notice
    assert a.short_answer is not None and a.short_answer.method == "sentence"


def test_extractive_mode_never_calls_the_model(fake_library: Any) -> None:
    llm = CopyLLM("monatlich")
    engine = make_engine(fake_library, [Document("pump.txt", PUMP, {})], llm=llm)
    a = engine.ask("Was wird mit dem Filter monatlich gemacht, wird er gereinigt?",
                   mode="extractive")
    assert a.kind == "answered" and llm.grammars == []


def test_an_empty_or_garbage_reply_says_so(fake_library: Any) -> None:
    """A backend that answers 200 with nothing usable leaves the quote and a notice."""
    engine = make_engine(fake_library, [Document("pump.txt", PUMP, {})],
                         llm=CopyLLM("monatlich", statement=""))
    a = engine.ask("Was wird mit dem Filter monatlich gemacht, wird er gereinigt?")
    assert a.kind == "answered" and "keine verwertbare Antwort" in a.notice
    good = make_engine(fake_library, [], llm=CopyLLM(
        "monatlich", statement="Der Filter wird monatlich gereinigt [1]."))
    b = good.ask("Was wird mit dem Filter monatlich gemacht, wird er gereinigt?")
    assert "verwertbare" not in b.notice


def test_backend_addresses_stay_out_of_the_notice(fake_library: Any) -> None:
    llm = CopyLLM("", error=BackendUnavailable(
        "openai backend at http://10.1.2.3:8000/v1 is unreachable (connection refused)",
        backend="copy"))
    engine = make_engine(fake_library, [Document("pump.txt", PUMP, {})], llm=llm)
    a = engine.ask("Was wird mit dem Filter monatlich gemacht, wird er gereinigt?")
    assert "connection refused" in a.notice and "10.1.2.3" not in a.notice
