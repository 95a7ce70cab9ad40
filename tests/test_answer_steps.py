"""The answer steps one by one, with the fake embedder: analysis, spans, evidence, features,
selection and its kinds, the short answer, the model's span copy, and calibration files."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.answer.analysis import analyse, answer_type
from app.answer.calibration import (
    Calibration,
    CalibrationError,
    calibration_path,
    load_calibration,
)
from app.answer.evidence import SentenceVectors, build_evidence
from app.answer.features import FEATURES, feature_matrix
from app.answer.selection import ANSWERED, CANDIDATES, REFUSED, Selector
from app.answer.short_answer import short_answer
from app.answer.span_copy import choice_grammar, copy_grammar, copy_span, locate
from app.answer.spans import spans_for, typed_spans
from app.citations import Source
from ingest.documents import Chunk


@pytest.mark.parametrize("question,kind", [
    ("When must the rent be paid?", "time"),
    ("Bis wann muss gekündigt werden?", "time"),
    ("How long is the warranty?", "duration"),
    ("Wie lange dauert die Probezeit?", "duration"),
    ("Wie viele Soldaten kämpfen?", "quantity"),
    ("How much does the pump cost?", "quantity"),
    ("How old is the founder?", "age"),
    ("What percentage of revenue is exported?", "percent"),
    ("Wer unterschreibt den Vertrag?", "person"),
    ("Where is the filter?", "place"),
    ("Was regelt Artikel 3?", "other"),
])
def test_answer_type(question: str, kind: str) -> None:
    assert answer_type(question) == kind


def test_typed_spans_find_dates_durations_and_units() -> None:
    text = ("Der Vertrag beginnt am 1. April 2025, läuft 36 Monate bis zum 31. März 2028 und "
            "die Dichtung ist nach 2000 Betriebsstunden zu ersetzen; maximal 55 °C.")
    found = {s.text: s.kind for s in typed_spans(text)}
    assert found["1. April 2025"] == "date"
    assert found["31. März 2028"] == "date"
    assert found["36 Monate"] == "duration"
    assert found["2000 Betriebsstunden"] == "duration"
    assert found["55 °C"] == "figure"
    for s in typed_spans(text):
        assert text[s.start:s.end] == s.text
    assert [s.text for s in spans_for(text, "percent")] == []
    assert "Freitag" in [s.text for s in spans_for("Zahlbar am Freitag.", "time")]


def _sources(*texts: str) -> list[Source]:
    out, offset = [], 0
    for i, t in enumerate(texts):
        out.append(Source(i + 1, Chunk(id=f"c{i}", source="doc.txt", text=t, start=offset,
                                       end=offset + len(t)), 1.0 / (i + 1)))
        offset += len(t) + 2
    return out


def _evidence(fake_embedder, question: str, *texts: str):  # type: ignore[no-untyped-def]
    q = analyse(question)
    vec = fake_embedder.embed_queries([question])[0]
    return build_evidence(q, _sources(*texts), vec, SentenceVectors(fake_embedder), 0.8)


def test_evidence_offsets_and_features(fake_embedder) -> None:  # type: ignore[no-untyped-def]
    ev = _evidence(fake_embedder, "How many soldiers died?",
                   "About 2000 soldiers died. The weather was fine.", "Nothing here at all.")
    doc = "About 2000 soldiers died. The weather was fine.\n\nNothing here at all."
    assert len(ev) == 3
    for c in ev.candidates:
        assert doc[c.sentence.start:c.sentence.end] == c.sentence.text
    x = feature_matrix(ev)
    assert x.shape == (3, len(FEATURES))
    col = {name: i for i, name in enumerate(FEATURES)}
    assert x[0, col["type_match"]] == 1.0 and x[1, col["type_missing"]] == 1.0
    assert x[0, col["overlap"]] > x[1, col["overlap"]]
    assert x[2, col["source_rank"]] == 0.5
    assert (x[:, col["cos_gap"]] <= 1e-9).all()


def _calibration(answer: float, candidates: float) -> Calibration:
    """A hand-made model that trusts lexical overlap only (for the kind decision)."""
    w = np.zeros(len(FEATURES))
    w[FEATURES.index("overlap")] = 10.0
    w[FEATURES.index("bias")] = -5.0
    return Calibration("fake-hash", tuple(w), tuple([0.0] * len(FEATURES)),
                       tuple([1.0] * len(FEATURES)), answer, candidates)


@pytest.mark.parametrize("question,kind", [
    ("How many soldiers died?", ANSWERED),
    ("How many soldiers drowned?", CANDIDATES),
    ("What colour are bananas?", REFUSED),
])
def test_selection_kinds(fake_embedder, question: str, kind: str) -> None:  # type: ignore[no-untyped-def]
    ev = _evidence(fake_embedder, question, "About 2000 soldiers died in the war.",
                   "The weather was fine.")
    sel = Selector(_calibration(0.99, 0.3)).select(ev)
    assert sel.kind == kind, sel.reason
    assert sel.probabilities == sorted(sel.probabilities, reverse=True)


def test_selection_without_calibration_never_answers(fake_embedder) -> None:  # type: ignore[no-untyped-def]
    ev = _evidence(fake_embedder, "How many soldiers died?", "About 2000 soldiers died.")
    assert Selector(None).select(ev).kind == CANDIDATES
    assert Selector(None, fallback_min_cos=1.1).select(ev).kind == REFUSED


def test_short_answer_is_the_typed_span_nearest_the_question(fake_embedder) -> None:  # type: ignore[no-untyped-def]
    ev = _evidence(fake_embedder, "How many soldiers died in 2024?",
                   "In 2024 the budget was 5 million dollars and about 2000 soldiers died.")
    short = short_answer(ev, ev.candidates[0])
    assert short is not None and short.method == "typed"
    assert short.text.startswith("2000")  # not 2024 (asked) and not the budget
    doc = "In 2024 the budget was 5 million dollars and about 2000 soldiers died."
    assert doc[short.start:short.end] == short.text
    other = _evidence(fake_embedder, "Who signed it?", "The mayor signed it.")
    assert short_answer(other, other.candidates[0]).method == "sentence"  # type: ignore[union-attr]
    none = _evidence(fake_embedder, "When did it happen?", "It happened quietly.")
    assert short_answer(none, none.candidates[0]) is None


def test_copy_grammar_allows_only_runs_of_the_sentence() -> None:
    g = copy_grammar('Kim sagte "Nein" heute.')
    assert g.splitlines()[0] == "root ::= w0 | w1 | w2 | w3"
    assert 'w1 ::= "sagte" (" " w2)?' in g
    assert '"\\"Nein\\""' in g  # quotes are escaped
    assert choice_grammar(["5 Tage", "5 Tage", "10 Minuten"]) == 'root ::= "5 Tage" | "10 Minuten"'
    assert locate(" Nein\". ", 'Kim sagte "Nein" heute.') == (11, 15)
    assert locate("Ja", "Kim sagte Nein.") is None


class _CopyLLM:
    name = model = "copy"

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.grammar: str | None = None

    def chat(self, messages, *, max_tokens, temperature, grammar=None, timeout=None,  # type: ignore[no-untyped-def]
             on_token=None):
        from app.llm_base import ChatResult

        self.grammar = grammar
        return ChatResult(self.reply, "copy", None, None, None, 1.0)


def test_copy_span_checks_the_copy() -> None:
    llm = _CopyLLM("Pjöngjang")
    assert copy_span(llm, "Die Hauptstadt ist Pjöngjang.", "Wo?") == (19, 28)
    assert llm.grammar and llm.grammar.startswith("root ::= w0")
    assert copy_span(_CopyLLM("Berlin"), "Die Hauptstadt ist Pjöngjang.", "Wo?") is None


def test_calibration_files(tmp_path: Path) -> None:
    cal = _calibration(0.9, 0.2)
    path = calibration_path("org/fake-hash", tmp_path)
    assert path.name == "fake-hash.json"
    path.write_text(cal.to_json())
    loaded = load_calibration("fake-hash", tmp_path)
    assert loaded is not None and loaded.weights == cal.weights
    assert load_calibration("other-model", tmp_path) is None  # logged, not fatal
    data = json.loads(path.read_text())
    with pytest.raises(CalibrationError):
        Calibration.from_dict({**data, "features": ["cos"]})
    with pytest.raises(CalibrationError):
        Calibration.from_dict({**data, "version": 99})
