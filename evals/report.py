"""Write an evaluation run as report.json, report.md and report.png, compared with the last run."""
from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

REPORT_JSON = "report.json"
PREVIOUS_JSON = "previous.json"
REPORT_MD = "report.md"
REPORT_PNG = "report.png"
MAX_FAILED_LISTED = 200


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


# --------------------------------------------------------------------------- markdown


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


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
        answer = r.get("error") or r.get("answer") or ""
        table.append([r.get("id"), r.get("question", r.get("user_input")),
                      ", ".join(r.get("failures", [])), str(answer)[:160]])
    lines += _table(["id", "question", "failed", "answer / error"], table)
    if len(failed) > MAX_FAILED_LISTED:
        lines += [f"… and {len(failed) - MAX_FAILED_LISTED} more (see report.json).", ""]
    return lines


def render_markdown(
    title: str,
    summary: Mapping[str, Any],
    rows: list[dict[str, Any]],
    chart_metrics: Mapping[str, float | None],
    metadata: Mapping[str, Any],
    previous: Mapping[str, float | None] | None = None,
    baselines: Mapping[str, Mapping[str, float | None]] | None = None,
) -> str:
    """The human-readable report: metadata, main metrics with deltas, summary, failures."""
    lines = [f"# {title}", ""]
    lines += [f"- **{k}**: {_fmt(v)}" for k, v in metadata.items()] + [""]
    header = ["metric", "value"]
    baselines = baselines or {}
    header += list(baselines)
    if previous is not None:
        header += ["previous", "Δ"]
    table = []
    for name, value in chart_metrics.items():
        cells: list[Any] = [name, value]
        cells += [b.get(name) for b in baselines.values()]
        if previous is not None:
            cells += [previous.get(name), _delta(value, previous.get(name))]
        table.append(cells)
    lines += ["## Main metrics", ""] + _table(header, table)
    if previous is None:
        lines += ["No previous run in this folder to compare with.", ""]
    lines += _summary_md(summary)
    lines += _failed_md(rows)
    return "\n".join(lines)


# --------------------------------------------------------------------------- chart


def render_chart(
    path: Path,
    title: str,
    chart_metrics: Mapping[str, float | None],
    previous: Mapping[str, float | None] | None = None,
    baselines: Mapping[str, Mapping[str, float | None]] | None = None,
) -> None:
    """A grouped bar chart: this run, then baselines, then the previous run."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(chart_metrics)
    series: list[tuple[str, Mapping[str, float | None]]] = [("this run", chart_metrics)]
    series += list((baselines or {}).items())
    if previous is not None:
        series.append(("previous run", previous))
    fig = Figure(figsize=(max(6.0, 1.1 * len(names) + 2), 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / len(series)
    for i, (label, values) in enumerate(series):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(names))]
        ys = [float(values.get(n) or 0.0) for n in names]
        bars = ax.bar(xs, ys, width, label=label)
        if i == 0:
            ax.bar_label(bars, labels=[_fmt(values.get(n)) for n in names], fontsize=7)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    top = max([1.0] + [float(v) for _, s in series for v in s.values() if v is not None])
    ax.set_ylim(0, top * 1.1)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)


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
) -> dict[str, Path]:
    """Write report.json/.md/.png into ``out_dir``; a prior report.json becomes previous.json.

    ``metadata`` is added to the run's time and git commit. Rows with ``passed`` False are listed as failures; ``baselines`` maps a label to metric
    values drawn beside this run's ``chart_metrics``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prior = _load_previous(out)
    previous = prior.get("chart_metrics") if prior else None
    meta = base_metadata(**dict(metadata or {}))
    if prior:
        meta.setdefault("previous_run", (prior.get("metadata") or {}).get("time"))
    paths = {"json": out / REPORT_JSON, "md": out / REPORT_MD, "png": out / REPORT_PNG}
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
        render_markdown(title, summary, rows, chart_metrics, meta, previous, baselines),
        encoding="utf-8")
    render_chart(paths["png"], title, chart_metrics, previous, baselines)
    logger.info("report written to %s", out)
    return paths
