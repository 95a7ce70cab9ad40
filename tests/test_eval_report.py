"""The report writer: json/md/png/html/jsonl files, and the comparison with the previous run."""
from __future__ import annotations

import base64
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from evals.report import is_lower_better, render_chart, write_report

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

CITED = {"n": 1, "source": "report.txt", "start": 10, "end": 40,
         "quote": "The brigade has about 15,000 troops."}
RICH_ROWS = [
    {"id": "r1", "question": "How many troops?", "answer": "About 15,000 [1].",
     "short_answer": {"text": "15,000"}, "citations": [CITED], "passed": True, "failures": [],
     "reference": "About 15,000 troops."},
    {"id": "r2", "user_input": "<script>alert('q')</script> Größe?", "response": "<b>bold</b>",
     "short_answer": None, "passed": False, "failures": ["figure_correct", "hit@5"],
     "citations": [{"n": 1, "source": "a<b>.txt", "start": 0, "end": 5,
                    "quote": "<img src=x onerror=alert(1)>"}]},
    {"id": "r3", "question": "What is the GDP?", "answer": None, "passed": False,
     "failures": ["error", "figure_correct"], "error": "HTTP 500: <boom>",
     "retrieved_contexts": ["ctx one", "ctx two"]},
]


class _Page(HTMLParser):
    """The parts of report.html the tests look at."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.ids: dict[str, dict[str, str | None]] = {}
        self.rows: list[dict[str, Any]] = []
        self.options: list[tuple[str | None, str]] = []
        self.scripts: list[str] = []
        self._stack: list[str] = []
        self._in_questions = False
        self._cell: list[str] | None = None
        self._option: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if a.get("id"):
            self.ids[str(a["id"])] = {"tag": tag, **a}
        if tag == "table" and a.get("id") == "questions":
            self._in_questions = True
        elif tag == "tr" and self._in_questions and "thead" not in self._stack:
            self.rows.append({"attrs": a, "cells": []})
        elif tag == "td" and self._in_questions and self.rows:
            self._cell = []
        elif tag == "option" and "select" in self._stack:
            self._option = []
            self.options.append((a.get("value"), ""))
        elif tag == "script":
            self.scripts.append("")
        self._stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_questions = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1]["cells"].append("".join(self._cell))
            self._cell = None
        elif tag == "option" and self._option is not None:
            self.options[-1] = (self.options[-1][0], "".join(self._option))
            self._option = None
        while self._stack and self._stack.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._option is not None:
            self._option.append(data)
        if self._stack and self._stack[-1] == "script":
            self.scripts[-1] += data


def _page(out: Path) -> tuple[str, _Page]:
    text = (out / "report.html").read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    return text, page


def _jsonl(out: Path) -> list[dict[str, Any]]:
    lines = (out / "rows.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


# --------------------------------------------------------------------------- json / md / png


def test_first_run_writes_all_files(tmp_path: Path) -> None:
    paths = write_report(tmp_path, SUMMARY, ROWS, "seed eval",
                         {"figure_correct": 0.5, "hit@5": 0.75}, metadata={"mode": "extractive"})
    assert set(paths) == {"json", "md", "png", "html", "jsonl"}
    assert all(p.parent == tmp_path and p.is_file() for p in paths.values())
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
    assert "lower is better" not in md  # neither metric is better when lower
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


# --------------------------------------------------------------------------- lower is better


@pytest.mark.parametrize(("name", "lower"), [
    ("false_refusal", True), ("error_rate", True), ("n_errors", True),
    ("latency_ms.p95", True), ("first_token_ms", True), ("Latency p50", True),
    ("confidently_wrong", True), ("answer_wrong_rate", True),
    ("figure_correct", False), ("hit@5", False), ("mrr", False), ("refusal_correct", False),
])
def test_lower_is_better_is_recognised_by_name(name: str, lower: bool) -> None:
    assert is_lower_better(name) is lower


def test_lower_is_better_extra_names() -> None:
    assert is_lower_better("cost", {"cost"})
    assert not is_lower_better("cost", {"costs"})


def test_markdown_marks_lower_is_better(tmp_path: Path) -> None:
    chart = {"figure_correct": 0.5, "false_refusal": 0.1, "latency p50": 1200.0, "cost": 0.3}
    write_report(tmp_path, SUMMARY, ROWS, "seed eval", chart, lower_is_better={"cost"})
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "| false_refusal ↓ | 0.100 |" in md
    assert "| latency p50 ↓ | 1200.000 |" in md  # kept in the table though it is above 1
    assert "| cost ↓ | 0.300 |" in md
    assert "| figure_correct | 0.500 |" in md
    assert "↓ lower is better" in md


def _ticks(ax: Any) -> list[str]:
    return [t.get_text() for t in ax.get_xticklabels()]


def test_chart_puts_values_above_one_on_their_own_axes_and_hatches_lower(tmp_path: Path) -> None:
    chart = {"figure_correct": 0.5, "false_refusal": 0.1, "latency_ms p50": 1200.0, "cost": 0.3}
    fig = render_chart(tmp_path / "c.png", "t", chart, previous={"figure_correct": 0.4},
                       lower_is_better={"cost"})
    small, large = fig.axes
    assert _ticks(small) == ["figure_correct", "false_refusal ↓", "cost ↓"]
    assert _ticks(large) == ["latency_ms p50 ↓"]
    assert small.get_ylim()[1] == pytest.approx(1.1)  # not squashed by the 1200 ms
    assert large.get_ylim()[1] > 1200
    this_run = small.containers[0]
    assert [bar.get_hatch() for bar in this_run] == [None, "//", "//"]
    assert [bar.get_hatch() for bar in large.containers[0]] == ["//"]
    assert "↓ lower is better" in [t.get_text() for t in small.get_legend().get_texts()]
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_chart_with_values_up_to_one_has_a_single_axes(tmp_path: Path) -> None:
    fig = render_chart(tmp_path / "c.png", "t", {"hit@1": 0.6, "mrr": 1.0})
    assert len(fig.axes) == 1
    assert _ticks(fig.axes[0]) == ["hit@1", "mrr"]
    assert all(bar.get_hatch() is None for bar in fig.axes[0].patches)


# --------------------------------------------------------------------------- html


def test_html_has_one_row_per_question_with_its_fields(tmp_path: Path) -> None:
    write_report(tmp_path, {}, RICH_ROWS, "seed eval", {"figure_correct": 0.5})
    _, page = _page(tmp_path)
    assert len(page.rows) == len(RICH_ROWS)
    by_id = {r["cells"][0]: r for r in page.rows}
    assert set(by_id) == {"r1", "r2", "r3"}
    _, question, answer, short, citations, result, why = by_id["r1"]["cells"]
    assert why == ""
    assert (question, answer, short, result) == ("How many troops?", "About 15,000 [1].",
                                                 "15,000", "pass")
    assert "report.txt 10–40" in citations and CITED["quote"] in citations
    r2 = by_id["r2"]["cells"]
    assert r2[1] == "<script>alert('q')</script> Größe?" and r2[2] == "<b>bold</b>"
    assert r2[3] == "" and r2[5] == "fail"
    assert "figure_correct" in r2[6] and "hit@5" in r2[6]
    assert by_id["r3"]["cells"][2] == "" and "HTTP 500: <boom>" in by_id["r3"]["cells"][6]
    assert by_id["r2"]["attrs"]["data-passed"] == "false"
    assert json.loads(str(by_id["r3"]["attrs"]["data-failures"])) == ["error", "figure_correct"]


def test_html_escapes_everything_from_rows(tmp_path: Path) -> None:
    write_report(tmp_path, {}, RICH_ROWS, "<i>title</i>", {"figure_correct": 0.5},
                 metadata={"note": "<u>meta</u>"})
    text, page = _page(tmp_path)
    assert "<script>alert" not in text
    assert "&lt;script&gt;alert(&#x27;q&#x27;)&lt;/script&gt;" in text
    assert "<img src=x" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "<b>bold</b>" not in text and "a<b>.txt" not in text
    assert "<boom>" not in text and "<i>title</i>" not in text and "<u>meta</u>" not in text
    assert [tag for tag, _ in page.tags if tag in {"script", "b", "i", "u"}] == ["script"]
    assert [t for t, a in page.tags if t == "img" and a.get("onerror") is not None] == []


def test_html_is_self_contained_with_the_chart_inline(tmp_path: Path) -> None:
    write_report(tmp_path, SUMMARY, ROWS, "seed eval", {"figure_correct": 0.5})
    text, page = _page(tmp_path)
    assert not [t for t, _ in page.tags if t in {"link", "iframe", "object", "embed"}]
    assert not [a for t, a in page.tags if t == "script" and "src" in a]
    assert not re.search(r"(src|href)=\"(https?:)?//", text) and "url(" not in text
    imgs = [a for t, a in page.tags if t == "img"]
    assert len(imgs) == 1
    prefix = "data:image/png;base64,"
    src = str(imgs[0]["src"])
    assert src.startswith(prefix)
    assert base64.b64decode(src[len(prefix):]) == (tmp_path / "report.png").read_bytes()
    # the Content-Security-Policy lets exactly the page's own filter script run
    csp = next(str(a["content"]) for t, a in page.tags
               if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    digest = base64.b64encode(hashlib.sha256(page.scripts[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp


def test_html_filter_controls_list_every_failure_reason(tmp_path: Path) -> None:
    write_report(tmp_path, {}, RICH_ROWS, "seed eval", {"figure_correct": 0.5})
    _, page = _page(tmp_path)
    assert page.ids["failed-only"]["tag"] == "input"
    assert page.ids["failed-only"]["type"] == "checkbox"
    assert page.ids["failure-reason"]["tag"] == "select"
    assert page.ids["search"]["tag"] == "input" and page.ids["search"]["type"] == "search"
    assert page.options[0] == ("", "any failure reason")
    assert page.options[1:] == [("figure_correct", "figure_correct (2)"),
                                ("error", "error (1)"), ("hit@5", "hit@5 (1)")]
    script = page.scripts[0]
    assert all(f'"{i}"' in script for i in ("failed-only", "failure-reason", "search"))


def test_html_main_metrics_match_markdown(tmp_path: Path) -> None:
    before = {"figure_correct": 0.5, "error_rate": 0.2, "hit@5": 0.5, "false_refusal": 0.1}
    now = {"figure_correct": 0.75, "error_rate": 0.1, "hit@5": 0.25, "false_refusal": 0.5}
    write_report(tmp_path, SUMMARY, ROWS, "seed eval", before, metadata={"mode": "extractive"})
    write_report(tmp_path, SUMMARY, ROWS, "seed eval", now,
                 baselines={"bm25": {"figure_correct": 0.25}})
    text, _ = _page(tmp_path)
    assert "<h1>seed eval</h1>" in text
    assert ("<tr><td>figure_correct</td><td>0.750</td><td>0.250</td><td>0.500</td>"
            '<td class="better">+0.250</td></tr>') in text
    assert ("<tr><td>error_rate ↓</td><td>0.100</td><td>–</td><td>0.200</td>"
            '<td class="better">-0.100</td></tr>') in text
    assert ("<tr><td>hit@5</td><td>0.250</td><td>–</td><td>0.500</td>"
            '<td class="worse">-0.250</td></tr>') in text
    assert ("<tr><td>false_refusal ↓</td><td>0.500</td><td>–</td><td>0.100</td>"
            '<td class="worse">+0.400</td></tr>') in text
    assert "<th>previous</th><th>Δ</th>" in text and "<th>previous_run</th>" in text
    assert "No previous run" not in text


def test_html_rows_without_pass_flags_show_a_dash(tmp_path: Path) -> None:
    rows = [{"id": "x1", "language": "de", "question": "Wo?", "rank_hybrid": 1},
            {"id": "x2", "language": "de", "question": "Wann?", "rank_hybrid": None}]
    write_report(tmp_path, {}, rows, "XQuAD retrieval", {"de hit@1": 0.5})
    _, page = _page(tmp_path)
    assert [r["cells"][5] for r in page.rows] == ["–", "–"]
    assert [r["attrs"]["data-passed"] for r in page.rows] == ["", ""]
    assert page.options == [("", "any failure reason")]


# --------------------------------------------------------------------------- rows.jsonl


def test_rows_jsonl_uses_ragas_fields(tmp_path: Path) -> None:
    write_report(tmp_path, {}, RICH_ROWS, "seed eval", {"figure_correct": 0.5})
    r1, r2, r3 = _jsonl(tmp_path)
    assert r1 == {"id": "r1", "user_input": "How many troops?", "response": "About 15,000 [1].",
                  "retrieved_contexts": [CITED["quote"]], "reference": "About 15,000 troops.",
                  "passed": True, "failures": []}
    assert r2["user_input"] == RICH_ROWS[1]["user_input"] and r2["response"] == "<b>bold</b>"
    assert r2["retrieved_contexts"] == ["<img src=x onerror=alert(1)>"]
    assert r2["reference"] is None and r2["failures"] == ["figure_correct", "hit@5"]
    assert r3["response"] == "" and r3["retrieved_contexts"] == ["ctx one", "ctx two"]
    assert "Größe" in (tmp_path / "rows.jsonl").read_text(encoding="utf-8")


def test_rows_jsonl_leaves_out_absent_pass_fields(tmp_path: Path) -> None:
    rows = [{"id": "x1", "question": "Wo?", "rank_hybrid": 1}, {"user_input": "Wann?"}]
    write_report(tmp_path, {}, rows, "XQuAD retrieval", {"de hit@1": 0.5})
    assert _jsonl(tmp_path) == [
        {"id": "x1", "user_input": "Wo?", "response": "", "retrieved_contexts": [],
         "reference": None},
        {"user_input": "Wann?", "response": "", "retrieved_contexts": [], "reference": None},
    ]
