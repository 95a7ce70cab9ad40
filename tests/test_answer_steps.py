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
from app.answer.short_answer import pick_span, short_answer, span_is_clear
from app.answer.span_copy import choice_grammar, copy_grammar, copy_span, locate
from app.answer.spans import spans_for, typed_spans
from app.citations import Source
from ingest.documents import Chunk


@pytest.mark.parametrize("question,kind", [
    ("When must the rent be paid?", "time"),
    ("Bis wann muss gekündigt werden?", "time"),
    ("Um wie viel Uhr fährt die Fähre ab?", "time"),  # "wie viel" asks for a clock time here
    ("At what time does the office open?", "time"),
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


def test_short_answer_is_the_one_open_typed_span(fake_embedder) -> None:  # type: ignore[no-untyped-def]
    doc = "In 2024 about 2000 soldiers died."
    ev = _evidence(fake_embedder, "How many soldiers died in 2024?", doc)
    short = short_answer(ev, ev.candidates[0])
    assert short is not None and short.method == "typed"
    assert short.text.startswith("2000")  # 2024 is the question's own figure
    assert doc[short.start:short.end] == short.text
    other = _evidence(fake_embedder, "Who signed it?", "The mayor signed it.")
    assert short_answer(other, other.candidates[0]).method == "sentence"  # type: ignore[union-attr]
    none = _evidence(fake_embedder, "When did it happen?", "It happened quietly.")
    assert short_answer(none, none.candidates[0]) is None


def test_several_open_figures_give_the_sentence_as_short_answer(fake_embedder) -> None:  # type: ignore[no-untyped-def]
    doc = "In 2024 the budget was 5 million dollars and about 2000 soldiers died."
    ev = _evidence(fake_embedder, "How many soldiers died in 2024?", doc)
    c = ev.candidates[0]
    assert pick_span(ev, c) is not None and pick_span(ev, c).text.startswith("2000")  # type: ignore[union-attr]
    assert not span_is_clear(ev, c)
    short = short_answer(ev, c)
    assert short is not None and short.method == "sentence" and short.text == doc


def test_a_span_holding_the_question_word_is_clear_among_rivals(fake_embedder) -> None:  # type: ignore[no-untyped-def]
    ev = _evidence(fake_embedder, "Wie viele Baumarten gibt es?",
                   "Im Jahr 2001 zählte man 16.000 Baumarten und 400 Vogelarten.")
    c = ev.candidates[0]
    short = short_answer(ev, c)
    assert span_is_clear(ev, c)
    assert short is not None and short.method == "typed" and "16.000" in short.text


@pytest.mark.parametrize("question,sentence,expected", [
    # the question's own figure, written as a word in the source, is not the answer
    ("Es hatte zuerst 3 Schichten; zu wie vielen Schichten wuchs es?",
     "Zuerst hatte es drei Schichten, später wuchs es auf sieben.", "sieben"),
])
def test_short_answer_skips_values_the_question_states(  # type: ignore[no-untyped-def]
        fake_embedder, question: str, sentence: str, expected: str) -> None:
    ev = _evidence(fake_embedder, question, sentence)
    short = short_answer(ev, ev.candidates[0])
    assert short is not None and short.text == expected


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


def test_risk_levels_pick_their_threshold(tmp_path: Path) -> None:
    from dataclasses import replace

    cal = replace(_calibration(float("inf"), 0.2),
                  answer_thresholds={"0.02": float("inf"), "0.05": 0.97, "0.1": 0.9})
    assert cal.threshold_for(None) == float("inf")
    assert cal.threshold_for(0.02) == float("inf")
    assert cal.threshold_for(0.07) == 0.97
    assert cal.threshold_for(0.5) == 0.9
    assert cal.threshold_for(0.01) == float("inf")  # below every calibrated level: never answer
    path = calibration_path("fake-hash", tmp_path)
    path.write_text(cal.to_json())  # infinity is stored as null, in plain JSON
    assert '"answer_threshold": null' in path.read_text()
    loaded = load_calibration("fake-hash", tmp_path)
    assert loaded is not None and loaded.threshold_for(0.07) == 0.97
    assert loaded.answer_threshold == float("inf")
    assert Selector(loaded, risk=0.1).answer_threshold == 0.9


def test_clopper_pearson_and_the_logistic_fit() -> None:
    from evals.calibrate import clopper_pearson_upper, fit_logistic

    assert clopper_pearson_upper(0, 148) == pytest.approx(0.0200, abs=2e-4)  # the rule of three
    assert clopper_pearson_upper(5, 5) == 1.0
    assert 0.02 < clopper_pearson_upper(1, 100) < 0.05
    rng = np.random.default_rng(0)
    x = np.c_[rng.normal(size=(400, 1)), np.ones(400)]
    y = (x[:, 0] + 0.3 * rng.normal(size=400) > 0).astype(float)
    w = fit_logistic(x, y, l2=0.1)
    assert w[0] > 2.0 and abs(w[1]) < 1.0  # the informative feature gets the weight


def test_thresholds_from_out_of_fold_decisions() -> None:
    from evals.calibrate import Decided, answer_threshold, candidate_threshold, measure

    def d(score: float, correct: bool, answerable: bool = True) -> Decided:
        return Decided("q", "dev", "xquad", "de", 2, answerable, score, correct, correct)

    # 40 right answers above .9, then one wrong at .85, then a mix; 10 unanswerables low.
    decided = [d(0.9 + i / 1000, True) for i in range(40)] + [d(0.85, False)] + \
        [d(0.8 - i / 100, i % 2 == 0) for i in range(20)] + \
        [d(0.1 + i / 100, False, False) for i in range(10)]
    t, fit = answer_threshold(decided, max_wrong=0.01, min_answered=20)
    assert t == pytest.approx(0.9) and fit["answered"] == 40 and fit["wrong"] == 0
    assert answer_threshold(decided, max_wrong=0.01, min_answered=50)[0] == float("inf")
    tc = candidate_threshold(decided, target=0.9)
    assert sum(x.score < tc for x in decided if not x.answerable) >= 9
    m = measure(decided, t, tc)
    assert m["answered_n"] == 40 and m["answered_wrong"] == 0
    assert m["refused_unanswerable"] >= 0.9 and m["false_refusal"] == 0.0


def test_the_prompt_starts_with_what_a_follow_up_shares() -> None:
    """Rules and sources come before the turns and the question: two asks over the same sources
    share their first message, whatever the conversation."""
    from app.answer.statement import build_messages

    passages = [(1, "Rund 15'000 Soldaten kämpfen im Krieg."), (2, "2000 sind gefallen.")]
    first = build_messages("Wie viele kämpfen?", passages, "de")
    follow = build_messages("Und wie viele sind gefallen?", passages, "de",
                            [{"role": "user", "content": "Wie viele kämpfen?"},
                             {"role": "assistant", "content": "Rund 15'000 [1]."}])
    assert first[0] == follow[0] and "[2] 2000 sind gefallen." in first[0]["content"]
    assert [m["role"] for m in follow] == ["system", "user", "assistant", "user"]
    assert follow[-1]["content"].endswith("Und wie viele sind gefallen?")
