"""SQuAD-style answer scoring and the XQuAD end-to-end scorer, on hand-made answers."""
from __future__ import annotations

from typing import Any

import pytest

from evals.squad import best_of, contains, exact_match, normalize, token_f1
from evals.xquad import Question
from evals.xquad_answers import Asked, sample, score, split_articles, summarise

GOLD = Question(id="q1", question="Wer eroberte England?", source="000_Normannen", start=100,
                end=113, answer="die Normannen")


def response(answer: str, citations: list[dict[str, Any]] | None = None, refused: bool = False,
             **extra: Any) -> dict[str, Any]:
    return {"answer": answer, "refused": refused, "citations": citations or [], **extra}


def cite(start: int, end: int, source: str = "000_Normannen") -> dict[str, Any]:
    return {"n": 1, "source": source, "start": start, "end": end, "quote": "x" * (end - start)}


def test_normalisation_drops_german_and_english_articles_punctuation_and_markers() -> None:
    assert normalize("Die Normannen [1].") == "normannen"
    assert normalize("The «Normans», 1066!") == "normans 1066"
    assert exact_match("Normannen", "die Normannen")


def test_partial_f1_and_containment() -> None:
    assert token_f1("die Normannen aus Frankreich", "die Normannen") == pytest.approx(0.5)  # P 1/3, R 1
    assert token_f1("Wikinger", "die Normannen") == 0.0
    assert contains("Es waren die Normannen aus Frankreich [1].", "Normannen")
    assert not contains("Normannenreich", "Normannen")  # whole words only


def test_best_of_takes_the_best_gold_answer() -> None:
    scores = best_of("1066", ["im Jahr 1066", "1066"])
    assert scores == {"em": True, "f1": 1.0, "contains_gold": True}


def test_exact_answer_with_covering_citation_passes() -> None:
    row = score(Asked(GOLD, "de", "extractive", "all"),
                response("Die Normannen [1].", [cite(90, 120)]), None, 10.0, [GOLD.answer])
    assert row["em"] and row["f1"] == 1.0 and row["contains_gold"] and row["cited"]
    assert row["passed"] and row["failures"] == []


def test_short_answer_is_scored_before_the_statement() -> None:
    resp = response("Es waren die Normannen, die kamen [1].", [cite(90, 120)],
                    short_answer={"text": "die Normannen", "start": 100, "end": 113})
    row = score(Asked(GOLD, "de", "extractive", "all"), resp, None, 1.0, [GOLD.answer])
    assert row["em"] is True


def test_citation_that_misses_the_gold_span_is_not_cited() -> None:
    row = score(Asked(GOLD, "de", "extractive", "all"),
                response("die Normannen [1]", [cite(105, 140)]), None, 1.0, [GOLD.answer])
    assert row["contains_gold"] and not row["cited"]
    assert row["failures"] == ["cited"]


def test_refusal_of_an_answerable_question_fails_and_counts() -> None:
    row = score(Asked(GOLD, "en", "generated", "all"),
                response("Not in the sources.", refused=True), None, 1.0, [GOLD.answer])
    assert row["failures"][0] == "refused an answerable question" and not row["passed"]
    assert row["f1"] == 0.0 and not row["cited"]


def test_error_is_a_failed_row() -> None:
    row = score(Asked(GOLD, "de", "extractive", "all"), None, "TimeoutError: 60 s", 60000.0,
                [GOLD.answer])
    assert row["failures"] == ["error"] and row["passed"] is False


def test_held_out_questions_must_be_refused() -> None:
    asked = Asked(GOLD, "de", "extractive", "held-out")
    answered = score(asked, response("die Normannen [1]", [cite(0, 5)]), None, 1.0, ["x"])
    refused = score(asked, response("Dazu steht nichts.", refused=True), None, 1.0, ["x"])
    assert not answered["passed"] and refused["passed"]
    summary = summarise([answered, refused])
    assert summary["held-out/extractive/de"]["refused"] == 0.5


def test_summary_separates_split_mode_and_language() -> None:
    rows = [score(Asked(GOLD, lang, mode, "all"), response("die Normannen", [cite(90, 120)]),
                  None, 5.0, [GOLD.answer]) for lang in ("de", "en") for mode in ("a", "b")]
    rows.append(score(Asked(GOLD, "de", "a", "ingested"), response("", refused=True), None, 1.0,
                      [GOLD.answer]))
    summary = summarise(rows)
    assert set(summary) == {"all/a/de", "all/a/en", "all/b/de", "all/b/en", "ingested/a/de"}
    assert summary["all/a/de"]["em"] == 1.0 and summary["ingested/a/de"]["false_refusal"] == 1.0


def test_sample_and_split_are_seeded() -> None:
    qs = [Question(str(i), "q", f"{i % 6:03d}", 0, 1, "a") for i in range(50)]
    assert [q.id for q in sample(qs, 10, 3)] == [q.id for q in sample(qs, 10, 3)]
    assert [q.id for q in sample(qs, 10, 3)] != [q.id for q in sample(qs, 10, 4)]
    assert len(sample(qs, None, 3)) == 50
    ingested, held = split_articles([f"{i:03d}" for i in range(6)], 7)
    assert len(ingested) == len(held) == 3 and not ingested & held
    assert split_articles([f"{i:03d}" for i in range(6)], 7) == (ingested, held)


def test_scoring_modules_never_import_the_answer_layer() -> None:
    """The eval never scores with the code it evaluates (only the adapters may import app)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "evals"
    for name in ("metrics", "matcher", "squad", "xquad_answers", "claims", "report", "domains"):
        tree = ast.parse((root / f"{name}.py").read_text(encoding="utf-8"))
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not any(m == "app" or m.startswith("app.") for m in imported), (name, imported)
