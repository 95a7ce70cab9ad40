"""The report writer: json/md/png files, and the comparison with the previous run."""
from __future__ import annotations

import json
from pathlib import Path

from evals.report import write_report

ROWS = [
    {"id": "q1", "question": "How many troops?", "passed": True, "failures": [],
     "answer": "About 15,000 [1]."},
    {"id": "q2", "question": "How many tanks?", "passed": False,
     "failures": ["refusal_correct"], "answer": "500 tanks."},
    {"id": "q3", "question": "What is the GDP?", "passed": False, "failures": ["error"],
     "error": "HTTP 500: boom"},
]
SUMMARY = {"n_questions": 3, "n_errors": 1, "metrics": {"figure_correct": 0.5},
           "latency_ms": {"p50": 10.0, "p95": 20.0},
           "by_language": {"de": {"n": 1, "hit@5": 1.0}, "en": {"n": 2, "hit@5": None}}}


def test_first_run_writes_all_three_files(tmp_path: Path) -> None:
    paths = write_report(tmp_path, SUMMARY, ROWS, "seed eval",
                         {"figure_correct": 0.5, "hit@5": 0.75}, metadata={"mode": "extractive"})
    assert set(paths) == {"json", "md", "png"}
    doc = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert doc["summary"] == SUMMARY and doc["rows"] == ROWS
    assert doc["metadata"]["mode"] == "extractive" and doc["metadata"]["time"]
    assert "git_commit" in doc["metadata"]
    assert doc["previous_chart_metrics"] is None
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert md.startswith("# seed eval")
    assert "| figure_correct | 0.500 |" in md
    assert "No previous run" in md
    assert "Failed questions (2 of 3)" in md
    assert "q2" in md and "refusal_correct" in md and "HTTP 500: boom" in md
    assert "| q1 |" not in md
    assert not (tmp_path / "previous.json").exists()


def test_second_run_keeps_previous_and_shows_deltas(tmp_path: Path) -> None:
    write_report(tmp_path, SUMMARY, ROWS, "seed eval", {"figure_correct": 0.5, "hit@5": 0.75})
    first = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    write_report(tmp_path, SUMMARY, ROWS[:1], "seed eval", {"figure_correct": 0.75, "hit@5": 0.5})
    previous = json.loads((tmp_path / "previous.json").read_text(encoding="utf-8"))
    assert previous == first
    doc = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert doc["previous_chart_metrics"] == {"figure_correct": 0.5, "hit@5": 0.75}
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "| metric | value | previous | Δ |" in md
    assert "| figure_correct | 0.750 | 0.500 | +0.250 |" in md
    assert "| hit@5 | 0.500 | 0.750 | -0.250 |" in md
    assert "Failed questions (0 of 1)" in md
    assert (tmp_path / "report.png").stat().st_size > 1000


def test_baselines_and_rows_without_pass_flags(tmp_path: Path) -> None:
    summary = {"de": {"hit@1": 0.6, "mrr": 0.7, "n": 10},
               "baselines": {"bm25": {"de": {"hit@1": 0.4, "mrr": 0.5, "n": 10}}}}
    rows = [{"id": "x1", "language": "de", "rank_hybrid": 1}]
    write_report(tmp_path, summary, rows, "XQuAD retrieval", {"de hit@1": 0.6, "de mrr": 0.7},
                 baselines={"bm25": {"de hit@1": 0.4, "de mrr": 0.5}})
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "| metric | value | bm25 |" in md
    assert "| de hit@1 | 0.600 | 0.400 |" in md
    assert "Failed questions" not in md
    assert "de.hit@1" in md  # nested summary sections are flattened into tables


def test_unreadable_previous_report_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text("{not json", encoding="utf-8")
    write_report(tmp_path, SUMMARY, ROWS, "seed eval", {"figure_correct": 0.5})
    doc = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert doc["previous_chart_metrics"] is None
