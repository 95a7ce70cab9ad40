"""The seed question set: loads, is well mixed, and its references match the document."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from evals.matcher import expected_figure
from evals.metrics import figure_in, score_answer
from evals.runners import (
    DEFAULT_CORPUS,
    DEFAULT_QUESTIONS,
    QuestionFileError,
    document_text,
    load_document_texts,
    load_questions,
)

SOURCE = "000_218c33ea26fbfb53.txt"
ROWS = load_questions(DEFAULT_QUESTIONS)
DOC = load_document_texts(DEFAULT_CORPUS)[SOURCE]


def tagged(tag: str) -> list[dict]:
    return [r for r in ROWS if tag in r["tags"]]


def test_document_text_drops_the_date_marker() -> None:
    assert DOC.startswith("Die russisch-nordkoreanische")
    raw = (DEFAULT_CORPUS / SOURCE).read_text(encoding="utf-8")
    assert raw.endswith(DOC) and len(raw) - len(DOC) == len(" date 2025-09-18 ")
    assert document_text("date 2024-01-02 Text") == "Text"
    assert document_text("Text date 2024-01-02 x") == "Text date 2024-01-02 x"


def test_composition() -> None:
    assert len(ROWS) >= 60
    langs = Counter(r["language"] for r in ROWS)
    assert set(langs) == {"de", "en"}
    assert min(langs.values()) >= 0.4 * len(ROWS)
    unanswerable = [r for r in ROWS if not r["answerable"]]
    assert len(unanswerable) >= 12
    assert all("unanswerable" in r["tags"] for r in unanswerable)
    follow_ups = [r for r in ROWS if r.get("history")]
    assert len(follow_ups) >= 6 and follow_ups == tagged("follow-up")
    assert len(tagged("hostile")) >= 4
    assert len(tagged("paraphrase")) >= 10
    assert len(tagged("multi-figure")) >= 5
    assert all(len(r["expected_figures"]) >= 2 for r in tagged("multi-figure"))


def test_unanswerable_rows_expect_nothing() -> None:
    for r in ROWS:
        if not r["answerable"]:
            assert r["expected_figures"] == [] and r["reference_quote"] == "", r["id"]


@pytest.mark.parametrize("row", [r for r in ROWS if r["answerable"]], ids=lambda r: r["id"])
def test_reference_quote_is_verbatim_and_holds_the_figures(row: dict) -> None:
    quote = row["reference_quote"]
    assert quote and quote in DOC, f"{row['id']}: reference_quote not in the document"
    for text in row["expected_figures"] + row.get("forbidden_figures", []):
        assert expected_figure(text) is not None, f"{row['id']}: {text!r} holds no figure"
    for text in row["expected_figures"]:
        assert figure_in(text, quote), f"{row['id']}: {text!r} not in quote"
    for text in row.get("forbidden_figures", []):
        assert not figure_in(text, DOC), row["id"]


def _write(tmp_path: Path, rows: list[object]) -> Path:
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "change, message",
    [
        ({"answerable": "yes"}, "'answerable' must be bool"),
        ({"language": "fr"}, "'language' must be one of"),
        ({"reference_quote": ""}, "needs a 'reference_quote'"),
        ({"history": [{"role": "system", "content": "x"}]}, "history turn"),
        ({"expected_figures": [5]}, "list of strings"),
    ],
)
def test_load_questions_rejects_bad_rows(tmp_path: Path, change: dict, message: str) -> None:
    path = _write(tmp_path, [ROWS[0], ROWS[0] | {"id": "other"} | change])
    with pytest.raises(QuestionFileError, match=message) as info:
        load_questions(path)
    assert ":2:" in str(info.value)


def test_load_questions_rejects_missing_field_duplicates_and_bad_json(tmp_path: Path) -> None:
    row = {k: v for k, v in ROWS[0].items() if k != "reference"}
    with pytest.raises(QuestionFileError, match="missing field 'reference'"):
        load_questions(_write(tmp_path, [row]))
    with pytest.raises(QuestionFileError, match="duplicate id"):
        load_questions(_write(tmp_path, [ROWS[0], ROWS[0]]))
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n", encoding="utf-8")
    with pytest.raises(QuestionFileError, match="invalid JSON"):
        load_questions(bad)
    with pytest.raises(QuestionFileError, match="cannot read"):
        load_questions(tmp_path / "missing.jsonl")


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r["id"])
def test_reference_answer_scores_perfectly(row: dict) -> None:
    """The reference answer, cited with its reference quote, passes every metric."""
    citations = []
    if row["answerable"]:
        start = DOC.index(row["reference_quote"])
        citations = [{"n": 1, "source": SOURCE, "start": start,
                      "end": start + len(row["reference_quote"]), "quote": row["reference_quote"]}]
    response = {"answer": row["reference"] + (" [1]" if citations else ""),
                "refused": not row["answerable"], "citations": citations,
                "language": row["language"], "mode": "oracle"}
    scored = score_answer(row, response, None, 1.0, {SOURCE: DOC})
    assert scored["passed"], (scored["failures"], scored.get("missing_figures"),
                              scored.get("ungrounded_figures"))
    assert scored["hit@1"] in (True, None)
