"""Per-question metrics and their aggregation, on hand-made answers about the seed article."""
from __future__ import annotations

from typing import Any

import pytest

from evals.metrics import aggregate, percentile, score_answer
from evals.runners import DEFAULT_CORPUS, load_document_texts

SOURCE = "000_218c33ea26fbfb53.txt"
TEXTS = {SOURCE: load_document_texts(DEFAULT_CORPUS)[SOURCE]}
DOC = TEXTS[SOURCE]
WEAPONS = ("hat Nordkorea seit 2023 Waffen im Wert von mindestens 5,6 Milliarden US-Dollar, "
           "möglicherweise sogar bis zu 9,8 Milliarden Dollar, an Russland geliefert")
DEAD = "Der südkoreanische Geheimdienst (NIS) schätzt, dass rund 2000 nordkoreanische Soldaten"

ROW = {
    "id": "w1", "user_input": "How much were the arms worth?", "reference": "5.6 to 9.8 bn USD",
    "expected_figures": ["5,6 Milliarden US-Dollar", "9,8 Milliarden Dollar"],
    "reference_quote": WEAPONS, "language": "en", "answerable": True, "tags": ["multi-figure"],
}
UNANSWERABLE = {
    "id": "u1", "user_input": "How many tanks did North Korea send?", "reference": "Not stated.",
    "expected_figures": [], "reference_quote": "", "language": "en", "answerable": False,
    "tags": ["unanswerable"],
}
GOOD_ANSWER = ("North Korea delivered weapons worth at least 5.6 billion US dollars, "
               "possibly up to 9.8 billion dollars [1].")


def cite(quote: str, n: int = 1, *, shift: int = 0, text: str | None = None) -> dict[str, Any]:
    start = DOC.index(quote) + shift
    return {"n": n, "source": SOURCE, "start": start, "end": start + len(quote),
            "quote": DOC[start:start + len(quote)] if text is None else text}


def response(answer: str, citations: list[dict], refused: bool = False, **extra: Any) -> dict:
    return {"answer": answer, "refused": refused, "mode": "test", "citations": citations,
            "language": "en", "retrieval_ms": 1.0, "first_token_ms": None, "total_ms": 2.0,
            **extra}


def score(row: dict, resp: dict | None, error: str | None = None) -> dict[str, Any]:
    return score_answer(row, resp, error, 12.5, TEXTS)


def test_correct_answer_passes_every_metric() -> None:
    r = score(ROW, response(GOOD_ANSWER, [cite(WEAPONS)]))
    assert r["figure_correct"] is True
    assert r["citation_supported"] is True
    assert r["quote_valid"] is True
    assert r["figures_grounded"] is True
    assert r["false_refusal"] is False and r["refusal_correct"] is None
    assert (r["hit@1"], r["hit@3"], r["hit@5"], r["mrr"], r["rank"]) == (True, True, True, 1.0, 1)
    assert r["unverified_count"] == 0
    assert r["passed"] is True and r["failures"] == []


def test_german_answer_with_german_number_format() -> None:
    answer = "Waffen im Wert von 5,6 bis 9,8 Milliarden Dollar [1]."
    r = score(ROW | {"language": "de"}, response(answer, [cite(WEAPONS)], language="de"))
    assert r["figure_correct"] is True and r["passed"] is True


def test_wrong_figure_fails_figure_and_grounding() -> None:
    answer = "Weapons worth 6.5 billion US dollars, possibly up to 9.8 billion dollars [1]."
    r = score(ROW, response(answer, [cite(WEAPONS)]))
    assert r["figure_correct"] is False
    assert r["missing_figures"] == ["5,6 Milliarden US-Dollar"]
    assert r["figures_grounded"] is False
    assert r["quote_valid"] is True and r["citation_supported"] is True
    assert "figure_correct" in r["failures"] and r["passed"] is False


def test_refusal_on_unanswerable_is_correct() -> None:
    r = score(UNANSWERABLE, response("The documents do not say.", [], refused=True))
    assert r["refusal_correct"] is True
    assert r["false_refusal"] is None and r["figure_correct"] is None
    assert r["hit@1"] is None and r["mrr"] is None
    assert r["passed"] is True


def test_answering_an_unanswerable_question_fails() -> None:
    r = score(UNANSWERABLE, response("North Korea sent 500 tanks [1].", [cite(DEAD)]))
    assert r["refusal_correct"] is False
    assert r["figures_grounded"] is False
    assert r["passed"] is False


def test_false_refusal_on_answerable() -> None:
    r = score(ROW, response("I cannot find this in the documents.", [], refused=True))
    assert r["false_refusal"] is True
    assert r["figure_correct"] is False
    assert r["citation_supported"] is False
    assert r["hit@5"] is False and r["mrr"] == 0.0
    assert "false_refusal" in r["failures"]


def test_wrong_citation_span_is_valid_but_unsupporting() -> None:
    r = score(ROW, response(GOOD_ANSWER, [cite(DEAD)]))
    assert r["quote_valid"] is True
    assert r["citation_supported"] is False
    assert r["unsupported_expected"] == ROW["expected_figures"]
    assert r["hit@5"] is False and r["mrr"] == 0.0
    assert r["figures_grounded"] is False


def test_quote_that_does_not_match_its_span() -> None:
    bad = cite(WEAPONS, text=WEAPONS.replace("5,6", "6,5"))
    r = score(ROW, response(GOOD_ANSWER, [bad]))
    assert r["quote_valid"] is False
    assert r["invalid_citations"] == [1]
    assert r["citation_supported"] is False


def test_shifted_span_is_invalid_but_still_overlaps_for_retrieval() -> None:
    shifted = cite(WEAPONS, shift=3, text=WEAPONS)  # quote is right, offsets are off by 3
    r = score(ROW, response(GOOD_ANSWER, [shifted]))
    assert r["quote_valid"] is False and r["citation_supported"] is False
    assert r["hit@1"] is True


def test_out_of_range_and_unknown_source_citations_are_invalid() -> None:
    far = {"n": 1, "source": SOURCE, "start": len(DOC) - 2, "end": len(DOC) + 5, "quote": "x"}
    other = cite(WEAPONS) | {"n": 2, "source": "nope.txt"}
    r = score(ROW, response(GOOD_ANSWER, [far, other]))
    assert r["quote_valid"] is False and r["invalid_citations"] == [1, 2]


def test_rank_follows_citation_order() -> None:
    citations = [cite(DEAD, 1), cite(WEAPONS, 2)]
    r = score(ROW, response(GOOD_ANSWER.replace("[1]", "[2]"), citations))
    assert (r["rank"], r["hit@1"], r["hit@3"], r["mrr"]) == (2, False, True, 0.5)
    assert r["citation_supported"] is True


def test_forbidden_figure_and_unverified_count() -> None:
    row = ROW | {"forbidden_figures": ["50 billion dollars"]}
    answer = GOOD_ANSWER + " Not 50 billion dollars."
    r = score(row, response(answer, [cite(WEAPONS)], unverified=["50 billion dollars"]))
    assert r["no_forbidden_figures"] is False and r["forbidden_stated"] == ["50 billion dollars"]
    assert r["unverified_count"] == 1
    ok = score(row, response(GOOD_ANSWER, [cite(WEAPONS)]))
    assert ok["no_forbidden_figures"] is True


def test_error_row_fails_every_applicable_metric() -> None:
    r = score(ROW, None, "timeout after 120s")
    assert r["error"] == "timeout after 120s"
    for name in ("figure_correct", "citation_supported", "quote_valid", "figures_grounded",
                 "hit@1", "hit@5"):
        assert r[name] is False, name
    assert r["false_refusal"] is True and r["mrr"] == 0.0
    assert r["failures"][0] == "error" and r["passed"] is False
    u = score(UNANSWERABLE, None, "HTTP 500: boom")
    assert u["refusal_correct"] is False and u["figure_correct"] is None


def test_contract_violation_is_an_error() -> None:
    r = score(ROW, {"answer": GOOD_ANSWER, "citations": []})
    assert r["error"] == "response has no boolean 'refused'"
    assert r["passed"] is False


def test_aggregate_counts_errors_in_every_mean() -> None:
    rows = [
        score(ROW, response(GOOD_ANSWER, [cite(WEAPONS)])),
        score(ROW, None, "timeout after 1s"),
        score(UNANSWERABLE, response("Not in the documents.", [], refused=True)),
        score(UNANSWERABLE, None, "HTTP 500: boom"),
    ]
    rows[1]["latency_ms"] = 1000.0
    s = aggregate(rows)
    assert (s["n_questions"], s["n_answerable"], s["n_unanswerable"], s["n_errors"]) == (4, 2, 2, 2)
    assert s["error_rate"] == 0.5 and s["pass_rate"] == 0.5
    m = s["metrics"]
    assert m["figure_correct"] == 0.5 and s["support"]["figure_correct"] == 2
    assert m["refusal_correct"] == 0.5 and s["support"]["refusal_correct"] == 2
    assert m["false_refusal"] == 0.5
    assert m["quote_valid"] == 0.5 and s["support"]["quote_valid"] == 4
    assert m["hit@1"] == 0.5 and m["mrr"] == 0.5
    assert s["latency_ms"]["p50"] == pytest.approx(12.5)
    assert s["latency_ms"]["max"] == 1000.0
    assert s["by_language"]["en"]["n"] == 4
    assert s["by_tag"]["unanswerable"]["errors"] == 1


def test_aggregate_of_nothing() -> None:
    s = aggregate([])
    assert s["n_questions"] == 0 and s["metrics"]["figure_correct"] is None
    assert s["latency_ms"]["p50"] is None


def test_percentile() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 95) == 5.0
    assert percentile(list(map(float, range(1, 101))), 95) == pytest.approx(95.05)
