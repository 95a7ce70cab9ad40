"""Write an eval run as report.json/.md/.png/.html and rows.jsonl, compared with the last run."""
from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import os
import subprocess
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

REPORT_JSON = "report.json"
PREVIOUS_JSON = "previous.json"
REPORT_MD = "report.md"
REPORT_PNG = "report.png"
REPORT_HTML = "report.html"
ROWS_JSONL = "rows.jsonl"
MAX_FAILED_LISTED = 200

# a metric whose name contains one of these is better when lower
LOWER_IS_BETTER_HINTS = ("false_refusal", "error", "latency", "_ms", "confidently_wrong",
                         "wrong_rate")
LOWER_MARK = "↓"
LOWER_NOTE = f"{LOWER_MARK} lower is better"
HATCH = "//"

Series = list[tuple[str, Mapping[str, float | None]]]


def git_commit(cwd: str | Path | None = None) -> str | None:
    """The checked-out commit of the repository, or None when git cannot tell."""
    cwd = cwd or Path(__file__).resolve().parents[1]
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                              text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def base_metadata(**extra: Any) -> dict[str, Any]:
    """Time and commit of a run, plus whatever the caller adds (mode, url, ...)."""
    meta = {"time": datetime.now(UTC).isoformat(timespec="seconds"),
            "git_commit": git_commit()}
    meta.update(extra)
    return meta


# --------------------------------------------------------------------------- previous run


def _load_previous(out_dir: Path) -> dict[str, Any] | None:
    """Move the last report.json to previous.json and return it (None when absent/unreadable)."""
    current = out_dir / REPORT_JSON
    if not current.exists():
        return None
    try:
        previous = json.loads(current.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable previous report %s: %s", current, exc)
        return None
    os.replace(current, out_dir / PREVIOUS_JSON)
    return previous if isinstance(previous, dict) else None


# --------------------------------------------------------------------------- metric direction


def is_lower_better(name: str, extra: Collection[str] = ()) -> bool:
    """True for metrics named in ``extra`` or whose name holds a LOWER_IS_BETTER_HINTS part."""
    lowered = name.lower()
    return name in extra or any(hint in lowered for hint in LOWER_IS_BETTER_HINTS)


def lower_is_better_names(names: Collection[str], extra: Collection[str] = ()) -> set[str]:
    """The subset of ``names`` that is better when lower."""
    return {n for n in names if is_lower_better(n, extra)}


def metric_label(name: str, lower: Collection[str]) -> str:
    """The metric name, with the lower-is-better mark when it applies."""
    return f"{name} {LOWER_MARK}" if name in lower else name


# --------------------------------------------------------------------------- row fields


def _first(row: Mapping[str, Any], *keys: str) -> Any:
    return next((row[k] for k in keys if row.get(k) is not None), None)


def row_question(row: Mapping[str, Any]) -> Any:
    """The question text of a row (``user_input`` or ``question``), None when absent."""
    return _first(row, "user_input", "question")


def row_answer(row: Mapping[str, Any]) -> Any:
    """The answer text of a row (``answer`` or ``response``), None when absent."""
    return _first(row, "answer", "response")


def row_short_answer(row: Mapping[str, Any]) -> str | None:
    """The short answer as text: a dict's ``text``, a string as is, else None."""
    short = row.get("short_answer")
    if isinstance(short, Mapping):
        short = short.get("text")
    return None if short is None else str(short)


def row_citations(row: Mapping[str, Any]) -> list[Any]:
    citations = row.get("citations")
    return list(citations) if isinstance(citations, (list, tuple)) else []


def row_failures(row: Mapping[str, Any]) -> list[str]:
    failures = row.get("failures")
    return [str(f) for f in failures] if isinstance(failures, (list, tuple)) else []


# --------------------------------------------------------------------------- rows.jsonl


def _contexts(row: Mapping[str, Any]) -> list[Any]:
    if row.get("retrieved_contexts") is not None:
        return list(row["retrieved_contexts"])
    return [c["quote"] for c in row_citations(row)
            if isinstance(c, Mapping) and c.get("quote") is not None]


def ragas_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """One row with ragas field names; ``id``, ``passed`` and ``failures`` kept when present."""
    answer = row_answer(row)
    out: dict[str, Any] = {"id": row["id"]} if "id" in row else {}
    out.update(user_input=row_question(row), response="" if answer is None else answer,
               retrieved_contexts=_contexts(row), reference=row.get("reference"))
    out.update({k: row[k] for k in ("passed", "failures") if k in row})
    return out


def write_rows_jsonl(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """rows.jsonl: one ragas-shaped JSON object a line."""
    lines = [json.dumps(ragas_row(r), ensure_ascii=False, default=str) for r in rows]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


# --------------------------------------------------------------------------- markdown


def _plain(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _fmt(value: Any) -> str:
    return _plain(value).replace("|", "\\|").replace("\n", " ")


def _delta(now: Any, before: Any) -> str:
    if not isinstance(now, (int, float)) or not isinstance(before, (int, float)):
        return "–"
    return f"{now - before:+.3f}"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        elif not isinstance(value, (list, tuple)):
            flat[f"{prefix}{key}"] = value
    return flat


def _summary_md(summary: Mapping[str, Any]) -> list[str]:
    """Scalars in one table; each nested section in its own (a matrix for dicts of dicts)."""
    lines = ["## Summary", ""]
    scalars = [[k, v] for k, v in summary.items() if not isinstance(v, (Mapping, list, tuple))]
    if scalars:
        lines += _table(["field", "value"], scalars)
    for key, value in summary.items():
        if not isinstance(value, Mapping) or not value:
            continue
        lines += [f"### {key}", ""]
        if all(isinstance(v, Mapping) for v in value.values()):
            flat = {k: _flatten(v) for k, v in value.items()}
            cols = list(dict.fromkeys(c for f in flat.values() for c in f))
            lines += _table([key] + cols, [[k] + [f.get(c) for c in cols] for k, f in flat.items()])
        else:
            lines += _table(["name", "value"], [[k, v] for k, v in _flatten(value).items()])
    return lines


def _failed_md(rows: list[dict[str, Any]]) -> list[str]:
    if not any("passed" in r for r in rows):
        return []
    failed = [r for r in rows if r.get("passed") is False]
    lines = [f"## Failed questions ({len(failed)} of {len(rows)})", ""]
    if not failed:
        return lines + ["None.", ""]
    table = []
    for r in failed[:MAX_FAILED_LISTED]:
        answer = r.get("error") or row_answer(r) or ""
        table.append([r.get("id"), row_question(r), ", ".join(row_failures(r)),
                      str(answer)[:160]])
    lines += _table(["id", "question", "failed", "answer / error"], table)
    if len(failed) > MAX_FAILED_LISTED:
        lines += [f"… and {len(failed) - MAX_FAILED_LISTED} more (see report.json).", ""]
    return lines


def main_metrics(
    chart_metrics: Mapping[str, float | None],
    previous: Mapping[str, float | None] | None = None,
    baselines: Mapping[str, Mapping[str, float | None]] | None = None,
) -> tuple[list[str], list[list[Any]]]:
    """Header and raw cells of the main metrics table, shared by markdown and HTML."""
    baselines = baselines or {}
    header = ["metric", "value", *baselines]
    if previous is not None:
        header += ["previous", "Δ"]
    table = []
    for name, value in chart_metrics.items():
        cells: list[Any] = [name, value, *(b.get(name) for b in baselines.values())]
        if previous is not None:
            cells += [previous.get(name), _delta(value, previous.get(name))]
        table.append(cells)
    return header, table


def render_markdown(
    title: str,
    summary: Mapping[str, Any],
    rows: list[dict[str, Any]],
    chart_metrics: Mapping[str, float | None],
    metadata: Mapping[str, Any],
    previous: Mapping[str, float | None] | None = None,
    baselines: Mapping[str, Mapping[str, float | None]] | None = None,
    *,
    lower_is_better: Collection[str] = (),
) -> str:
    """The human-readable report: metadata, main metrics with deltas, summary, failures.

    Metrics better when lower (``lower_is_better`` plus names matched by LOWER_IS_BETTER_HINTS)
    carry a ↓ after their name in the main metrics table.
    """
    lower = lower_is_better_names(chart_metrics, lower_is_better)
    lines = [f"# {title}", ""]
    lines += [f"- **{k}**: {_fmt(v)}" for k, v in metadata.items()] + [""]
    header, table = main_metrics(chart_metrics, previous, baselines)
    table = [[metric_label(cells[0], lower), *cells[1:]] for cells in table]
    lines += ["## Main metrics", ""] + _table(header, table)
    if lower:
        lines += [f"{LOWER_NOTE}.", ""]
    if previous is None:
        lines += ["No previous run in this folder to compare with.", ""]
    lines += _summary_md(summary)
    lines += _failed_md(rows)
    return "\n".join(lines)


# --------------------------------------------------------------------------- chart


def _series(
    chart_metrics: Mapping[str, float | None],
    previous: Mapping[str, float | None] | None,
    baselines: Mapping[str, Mapping[str, float | None]] | None,
) -> Series:
    series: Series = [("this run", chart_metrics)]
    series += list((baselines or {}).items())
    if previous is not None:
        series.append(("previous run", previous))
    return series


def split_by_scale(names: Sequence[str], series: Series) -> tuple[list[str], list[str]]:
    """Metrics on the 0..1 scale, and those with any value above 1 (latencies, counts)."""
    def large(name: str) -> bool:
        return any(isinstance(v, (int, float)) and abs(v) > 1.0
                   for v in (values.get(name) for _, values in series))

    return [n for n in names if not large(n)], [n for n in names if large(n)]


def _draw_group(ax: Axes, names: list[str], series: Series, lower: set[str]) -> None:
    """Grouped bars of ``names``; lower-is-better metrics hatched and marked on the tick."""
    width = 0.8 / len(series)
    for i, (label, values) in enumerate(series):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(names))]
        ys = [float(values.get(n) or 0.0) for n in names]
        bars = ax.bar(xs, ys, width, label=label, color=f"C{i}")
        for bar, name in zip(bars, names, strict=True):
            if name in lower:
                bar.set_hatch(HATCH)
                bar.set_edgecolor("0.2")
        if i == 0:
            ax.bar_label(bars, labels=[_plain(values.get(n)) for n in names], fontsize=7)
    ax.set_xticks(range(len(names)), [metric_label(n, lower) for n in names],
                  rotation=30, ha="right")
    found = [float(v) for _, s in series for n in names if (v := s.get(n)) is not None]
    ax.set_ylim(min([0.0] + found) * 1.1, max([1.0] + found) * 1.1)


def _legend(ax: Axes, lower: set[str]) -> None:
    from matplotlib.patches import Patch

    handles, labels = ax.get_legend_handles_labels()
    if lower:
        handles.append(Patch(facecolor="white", edgecolor="0.2", hatch=HATCH, label=LOWER_NOTE))
        labels.append(LOWER_NOTE)
    ax.legend(handles, labels, fontsize=8)


def render_chart(
    path: Path,
    title: str,
    chart_metrics: Mapping[str, float | None],
    previous: Mapping[str, float | None] | None = None,
    baselines: Mapping[str, Mapping[str, float | None]] | None = None,
    *,
    lower_is_better: Collection[str] = (),
) -> Figure:
    """A grouped bar chart (this run, baselines, previous run), saved to ``path`` and returned.

    Metrics with any value above 1 (latencies in ms, counts) are drawn on a second subplot
    with its own y axis, so they do not squash the 0..1 metrics. Metrics better when lower
    are hatched and get a ↓ on their tick label.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(chart_metrics)
    series = _series(chart_metrics, previous, baselines)
    lower = lower_is_better_names(names, lower_is_better)
    groups = [g for g in split_by_scale(names, series) if g] or [[]]
    fig = Figure(figsize=(max(6.0, 1.1 * len(names) + 2), 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(groups), squeeze=False,
                        width_ratios=[max(1, len(g)) for g in groups])[0]
    for ax, group in zip(axes, groups, strict=True):
        _draw_group(ax, group, series, lower)
    if len(groups) > 1:
        axes[1].set_title("values above 1", fontsize=9)
    if names:
        _legend(axes[0], lower)
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    return fig


# --------------------------------------------------------------------------- html

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.3em .5em;vertical-align:top;text-align:left}
th{background:#f3f3f3}
td.text{white-space:pre-wrap;max-width:32em}
tr.fail td.result{color:#b00020;font-weight:600}
tr.pass td.result{color:#1b7f3b}
td.better{color:#1b7f3b}
td.worse{color:#b00020}
blockquote{margin:.2em 0 .5em;padding-left:.5em;border-left:3px solid #ccc;white-space:pre-wrap}
.reason{display:inline-block;background:#fde7ea;border-radius:3px;padding:0 .3em;margin:1px}
.controls{display:flex;gap:1em;align-items:center;flex-wrap:wrap;margin:.5em 0}
img{max-width:100%}
"""

_FILTER_JS = """
(function () {
  var only = document.getElementById("failed-only");
  var reason = document.getElementById("failure-reason");
  var search = document.getElementById("search");
  var shown = document.getElementById("shown");
  var rows = Array.prototype.slice.call(document.querySelectorAll("#questions tbody tr"));
  function apply() {
    var needle = search.value.trim().toLowerCase();
    var n = 0;
    rows.forEach(function (tr) {
      var reasons = JSON.parse(tr.getAttribute("data-failures") || "[]");
      var ok = (!only.checked || tr.getAttribute("data-passed") === "false")
        && (!reason.value || reasons.indexOf(reason.value) >= 0)
        && (!needle || tr.textContent.toLowerCase().indexOf(needle) >= 0);
      tr.hidden = !ok;
      if (ok) { n += 1; }
    });
    shown.textContent = n + " of " + rows.length + " shown";
  }
  [only, reason, search].forEach(function (el) {
    el.addEventListener("input", apply);
    el.addEventListener("change", apply);
  });
  apply();
})();
"""

_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_FILTER_JS.encode("utf-8")).digest()).decode()
# nothing may load from outside the file, and only the filter script above may run
_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{_SCRIPT_HASH}'")


def _e(value: Any) -> str:
    """HTML-escaped text (quotes too, so it is safe in attributes)."""
    return html.escape(str(value), quote=True)


def _cell(value: Any, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<td{attr}>{_e(_plain(value))}</td>"


def _html_table(header: Sequence[str], body: Sequence[str], table_id: str = "") -> str:
    attr = f' id="{table_id}"' if table_id else ""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _metadata_html(metadata: Mapping[str, Any]) -> str:
    body = [f"<tr><th>{_e(k)}</th>{_cell(v)}</tr>" for k, v in metadata.items()]
    return _html_table(["field", "value"], body)


def _delta_class(now: Any, before: Any, lower: bool) -> str:
    if not isinstance(now, (int, float)) or not isinstance(before, (int, float)) or now == before:
        return ""
    return "better" if (now < before) == lower else "worse"


def _metrics_html(
    chart_metrics: Mapping[str, float | None],
    previous: Mapping[str, float | None] | None,
    baselines: Mapping[str, Mapping[str, float | None]] | None,
    lower: set[str],
) -> str:
    header, table = main_metrics(chart_metrics, previous, baselines)
    body = []
    for name, *cells in table:
        tds = [_cell(metric_label(name, lower)), *(_cell(c) for c in cells)]
        if previous is not None:
            cls = _delta_class(chart_metrics.get(name), previous.get(name), name in lower)
            tds[-1] = _cell(cells[-1], cls)
        body.append(f"<tr>{''.join(tds)}</tr>")
    note = f"<p>{_e(LOWER_NOTE)}.</p>" if lower else ""
    return _html_table(header, body) + note


def _citation_html(citation: Any) -> str:
    if not isinstance(citation, Mapping):
        return f"<li>{_e(citation)}</li>"
    where = f"[{citation.get('n', '?')}] {citation.get('source', '?')}"
    if citation.get("start") is not None or citation.get("end") is not None:
        where += f" {citation.get('start', '?')}–{citation.get('end', '?')}"
    quote = citation.get("quote")
    quoted = "" if quote is None else f"<blockquote>{_e(quote)}</blockquote>"
    return f"<li>{_e(where)}{quoted}</li>"


def _why_html(row: Mapping[str, Any]) -> str:
    parts = [f'<span class="reason">{_e(f)}</span>' for f in row_failures(row)]
    if row.get("error"):
        parts.append(f"<div>{_e(row['error'])}</div>")
    return " ".join(parts)


def _result(row: Mapping[str, Any]) -> tuple[str, str]:
    """(css class / data-passed value, shown text) of a row's pass/fail state."""
    passed = row.get("passed")
    if passed is None:
        return "", "–"
    return ("pass", "pass") if passed else ("fail", "fail")


def _question_row_html(row: Mapping[str, Any]) -> str:
    state, shown = _result(row)
    passed = {"pass": "true", "fail": "false"}.get(state, "")
    failures = _e(json.dumps(row_failures(row), ensure_ascii=False))
    citations = "".join(_citation_html(c) for c in row_citations(row))
    cells = [
        _cell(row.get("id")),
        _cell(row_question(row) or "", "text"),
        _cell(row_answer(row) or "", "text"),
        _cell(row_short_answer(row) or "", "text"),
        f"<td><ol>{citations}</ol></td>" if citations else "<td></td>",
        f'<td class="result">{_e(shown)}</td>',
        f"<td>{_why_html(row)}</td>",
    ]
    return (f'<tr class="{state}" data-passed="{passed}" data-failures="{failures}">'
            f"{''.join(cells)}</tr>")


def failure_reasons(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, int]]:
    """Every failure reason in ``rows`` with its count, most frequent first."""
    counts = Counter(f for r in rows for f in dict.fromkeys(row_failures(r)))
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _controls_html(rows: Sequence[Mapping[str, Any]]) -> str:
    options = ['<option value="">any failure reason</option>']
    options += [f'<option value="{_e(r)}">{_e(r)} ({n})</option>'
                for r, n in failure_reasons(rows)]
    return ('<div class="controls">'
            '<label><input type="checkbox" id="failed-only"> failed only</label>'
            f'<label>failure reason <select id="failure-reason">{"".join(options)}</select>'
            "</label>"
            '<label>search <input type="search" id="search" placeholder="text in any column">'
            '</label><span id="shown"></span></div>')


def _questions_html(rows: Sequence[Mapping[str, Any]]) -> str:
    header = ["id", "question", "answer", "short answer", "citations", "result", "why"]
    body = [_question_row_html(r) for r in rows]
    return _controls_html(rows) + _html_table(header, body, "questions")


def render_html(
    title: str,
    rows: Sequence[Mapping[str, Any]],
    chart_metrics: Mapping[str, float | None],
    metadata: Mapping[str, Any],
    previous: Mapping[str, float | None] | None = None,
    baselines: Mapping[str, Mapping[str, float | None]] | None = None,
    *,
    chart_png: bytes | None = None,
    lower_is_better: Collection[str] = (),
) -> str:
    """One self-contained page: metadata, main metrics, the chart and a filterable question table.

    Every value taken from ``rows`` and ``metadata`` is HTML-escaped; the page loads nothing
    from outside itself (a Content-Security-Policy forbids it) and runs only its own filter.
    """
    lower = lower_is_better_names(chart_metrics, lower_is_better)
    chart = ""
    if chart_png:
        data = base64.b64encode(chart_png).decode("ascii")
        chart = f'<img alt="chart of the main metrics" src="data:image/png;base64,{data}">'
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        _metadata_html(metadata),
        "<h2>Main metrics</h2>",
        _metrics_html(chart_metrics, previous, baselines, lower),
        "" if previous is not None else "<p>No previous run in this folder to compare with.</p>",
        chart,
        f"<h2>Questions ({len(rows)})</h2>",
        _questions_html(rows),
        f"<script>{_FILTER_JS}</script>",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


# --------------------------------------------------------------------------- entry point


def write_report(
    out_dir: str | Path,
    summary: Mapping[str, Any],
    rows: list[dict[str, Any]],
    title: str,
    chart_metrics: Mapping[str, float | None],
    *,
    metadata: Mapping[str, Any] | None = None,
    baselines: Mapping[str, Mapping[str, float | None]] | None = None,
    lower_is_better: Collection[str] = (),
) -> dict[str, Path]:
    """Write report.json/.md/.png/.html and rows.jsonl into ``out_dir``.

    A prior report.json becomes previous.json and its chart metrics are compared with these.
    ``metadata`` is added to the run's time and git commit. Rows with ``passed`` False are
    listed as failures; ``baselines`` maps a label to metric values drawn beside this run's
    ``chart_metrics``. ``lower_is_better`` names metrics better when lower, besides those
    recognised by name (see LOWER_IS_BETTER_HINTS). Returns the paths by kind: json, md, png,
    html, jsonl.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prior = _load_previous(out)
    previous = prior.get("chart_metrics") if prior else None
    meta = base_metadata(**dict(metadata or {}))
    if prior:
        meta.setdefault("previous_run", (prior.get("metadata") or {}).get("time"))
    paths = {"json": out / REPORT_JSON, "md": out / REPORT_MD, "png": out / REPORT_PNG,
             "html": out / REPORT_HTML, "jsonl": out / ROWS_JSONL}
    document = {
        "title": title,
        "metadata": meta,
        "chart_metrics": dict(chart_metrics),
        "baselines": {k: dict(v) for k, v in (baselines or {}).items()},
        "previous_chart_metrics": previous,
        "summary": summary,
        "rows": rows,
    }
    paths["json"].write_text(json.dumps(document, ensure_ascii=False, indent=2, default=str),
                             encoding="utf-8")
    paths["md"].write_text(
        render_markdown(title, summary, rows, chart_metrics, meta, previous, baselines,
                        lower_is_better=lower_is_better),
        encoding="utf-8")
    render_chart(paths["png"], title, chart_metrics, previous, baselines,
                 lower_is_better=lower_is_better)
    paths["html"].write_text(
        render_html(title, rows, chart_metrics, meta, previous, baselines,
                    chart_png=paths["png"].read_bytes(), lower_is_better=lower_is_better),
        encoding="utf-8")
    write_rows_jsonl(paths["jsonl"], rows)
    logger.info("report written to %s", out)
    return paths
