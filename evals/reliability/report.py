"""Renders the battery's results as docs/reliability.md (tables, and the soak's memory curve)."""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def _fmt(value: Any, digits: int = 2) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return "" if value is None else str(value)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _inputs(section: dict[str, Any]) -> list[str]:
    rows = [r for part in ("open", "token") for r in section.get(part, [])]
    handled = sum(r["handled"] for r in rows)
    unchanged = sum(r["store_unchanged"] for r in rows)
    lines = [f"{len(rows)} requests ({len(section.get('open', []))} against a server without a "
             f"token, {len(section.get('token', []))} with one): **{handled} handled** with the "
             f"expected status and message, **store unchanged after {unchanged}**.", "",
             "| category | tried | handled | store unchanged |", "|---|---|---|---|"]
    tried: Counter[str] = Counter()
    ok: Counter[str] = Counter()
    same: Counter[str] = Counter()
    for r in rows:
        cat = r["case"]["category"]
        tried[cat] += 1
        ok[cat] += bool(r["handled"])
        same[cat] += bool(r["store_unchanged"])
    lines += [f"| {c} | {tried[c]} | {ok[c]} | {same[c]} |" for c in sorted(tried)]
    misses = [r for r in rows if not (r["handled"] and r["store_unchanged"])]
    if misses:
        lines += ["", "Not handled:", "", "| request | status | note |", "|---|---|---|"]
        lines += [f"| {_cell(r['case']['name'])} | {r['status']} | {_cell(r['note'])} |"
                  for r in misses]
    return lines


def _faults(rows: list[dict[str, Any]]) -> list[str]:
    survived = sum(r["survived"] for r in rows)
    lines = [f"**{survived} of {len(rows)} faults survived.** Per fault: /api/health answers in "
             "bounded time and says `degraded`; a question over /api/ask is answered in bounded "
             "time; beleg's own OpenAI-compatible client, streaming from the faulty server, ends "
             "in bounded time with a typed error or a capped text; neither process burns CPU in "
             "the 5 s after; health is `ok` again once the model behaves. At the default answer "
             "risk no answer reaches the model (see docs/evaluation.md), so the client call is "
             "the path a generated answer would take.", "",
             "| fault | health | ask | client (what came back) | slowest (s) | CPU after (s) | "
             "recovered | note |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['fault']} | {r['health']} | {r['ask_status']} | {_cell(r['client'][:90])} | "
              f"{_fmt(max(r['health_s'], r['ask_s'], r['client_s']), 1)} | "
              f"{_fmt(r['cpu_after_s'])} | {'yes' if r['recovered'] else 'no'} | "
              f"{_cell(r['note'])} |" for r in rows]
    return lines


def _chroma(r: dict[str, Any]) -> list[str]:
    if "skipped" in r or "failed" in r:
        return [f"Not run: {r.get('skipped') or r.get('failed')}"]
    lines = ["4 clients asked in a loop; the `chroma run` server was killed with SIGKILL after "
             "20 s and started again on the same folder 20 s later.", "",
             "| phase | replies by status |", "|---|---|"]
    for phase in ("before", "down", "after"):
        counts = r["by_phase"].get(phase, {})
        lines.append(f"| {phase} | {', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))} |")
    lines += ["", f"- 5xx other than 503, or no reply at all: **{r['server_errors']}**",
              f"- slowest reply while Chroma was down: {_fmt(r['slowest_down_s'], 1)} s",
              f"- first good answer after the restart: {_fmt(r['recovery_s'], 1)} s",
              f"- beleg still running afterwards: {'yes' if r['server_alive'] else 'no'}"]
    said = next((d for d in r.get("down_details", []) if d), "")
    if said:
        lines.append(f"- what a client read while it was down: `{_cell(said)}`")
    return lines


def _audit(a: dict[str, Any]) -> str:
    if not a["opened"]:
        return f"store did not open: {a['error']}"
    return (f"{a['documents']} documents, {a['complete']} complete, incomplete "
            f"{len(a['incomplete'])}, orphan chunks of {len(a['orphan_sources'])} sources")


def _kill9(r: dict[str, Any]) -> list[str]:
    if "failed" in r:
        return [f"Not run: {r['failed']}"]
    lines = [f"`beleg ingest` of the {r['healed']['documents']} German XQuAD dev articles, "
             "killed with SIGKILL at a random moment, then read by "
             "a new process:", "", "| killed after (s) | store found |",
             "|---|---|"]
    lines += [f"| {_fmt(k['after_s'], 1)} | {_audit(k['audit'])} |" for k in r["kills"]]
    lines += ["", f"One ingest run to the end afterwards: {_audit(r['healed'])}."]
    return lines


def _diskfull(r: dict[str, Any]) -> list[str]:
    if "failed" in r:
        return [f"Not run: {r['failed']}"]
    return [f"Ingest of the same articles into a data folder with room for about half of them "
            f"({r['how']}):", "",
            f"- exit code {r['exit_code']}, last line shown: `{_cell(r['message'])}`",
            f"- a Python traceback reached the user: {'yes' if r['traceback'] else 'no'}",
            f"- store right after the fault: {_audit(r['audit_after_fault'])}",
            f"- after room came back and ingest ran again: {_audit(r['healed'])}"]


def _load(r: dict[str, Any]) -> list[str]:
    if "failed" in r:
        return [f"Not run: {r['failed']}"]
    lines = ["Distinct XQuAD questions (German and English) over the XQuAD dev articles and the "
             "seed article. At the default answer risk no answer reaches the local model, so the "
             "default mode measures the same path as extractive with the model loaded.", "",
             "| clients | mode | answer slots | seconds | requests | p50 (s) | p95 (s) | errors |",
             "|---|---|---|---|---|---|---|---|"]
    for key, slots in (("extractive_20_slots", "20"), ("extractive", "2 (default)"),
                       ("generated", "2 (default)")):
        if key not in r:
            continue
        x = r[key]
        lines.append(f"| {x['clients']} | {x['mode']} | {slots} | {x['seconds']:.0f} | "
                     f"{x['requests']} | {_fmt(x['p50_s'])} | {_fmt(x['p95_s'])} | "
                     f"{x['errors']} |")
    return lines


def _soak(r: dict[str, Any], png: Path | None) -> list[str]:
    if "failed" in r:
        return [f"Not run: {r['failed']}"]
    lines = [f"4 clients asked distinct XQuAD questions in the default mode (the local model) "
             f"for {r['seconds'] / 60:.0f} minutes: {r['requests']} answers, {r['errors']} "
             f"errors, p50 {_fmt(r['p50_s'])} s, p95 {_fmt(r['p95_s'])} s.", "",
             f"RSS of the server: {r['rss_start_mb']:.0f} MB before the first question; after "
             f"the {r['warmup_min']:.0f}-minute warm-up the least-squares drift is "
             f"**{_fmt(r['drift_mb_per_10min'], 1)} MB per 10 minutes**.", ""]
    if png is not None:
        lines += [f"![RSS over the soak]({png.name})", ""]
    lines += ["| minute | RSS (MB) |", "|---|---|"]
    samples = r["rss_mb"]
    step = max(1, len(samples) // 12)
    picked = samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else [])
    lines += [f"| {m:.1f} | {mb:.0f} |" for m, mb in picked]
    return lines


def plot_soak(r: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    xs, ys = zip(*r["rss_mb"]) if r.get("rss_mb") else ((), ())
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(xs, ys, marker=".")
    ax.axvline(r["warmup_min"], color="grey", linestyle=":")
    ax.set_xlabel("minutes")
    ax.set_ylabel("RSS (MB)")
    ax.set_title("beleg serve under 4 clients")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


RENDERERS: dict[str, Any] = {"inputs": _inputs, "faults": _faults, "chroma": _chroma,
                             "kill9": _kill9, "diskfull": _diskfull, "load": _load}
SECTIONS = (("inputs", "Bad inputs"), ("faults", "Backend faults"),
            ("chroma", "Chroma server killed and restarted"), ("kill9", "kill -9 during ingest"),
            ("diskfull", "Disk full during ingest"), ("load", "Load"), ("soak", "Soak"))


def render(results: dict[str, Any], doc: Path, command: str) -> str:
    png = None
    if isinstance(results.get("soak"), dict) and results["soak"].get("rss_mb"):
        png = plot_soak(results["soak"], doc.with_name("reliability-soak.png"))
    lines = ["# Reliability", "",
             f"Written by `{command}` (the battery in `evals/reliability/`); every figure below "
             "comes from real processes on 127.0.0.1: `beleg serve`, `chroma run`, `beleg "
             "ingest` and a model server that misbehaves on purpose "
             "(`evals/reliability/fault_llm.py`). CI runs the fast subset "
             "(`tests/test_reliability_inputs.py` and the other `test_reliability_*` files).",
             ""]
    seconds = results.get("seconds", {})
    for key, title in SECTIONS:
        if key not in results:
            continue
        took = f" ({seconds[key]} s)" if key in seconds else ""
        lines += [f"## {title}{took}", ""]
        r = results[key]
        if isinstance(r, dict) and "failed" in r and key in ("inputs", "faults"):
            lines += [f"Not run: {r['failed']}", ""]
            continue
        body = _soak(r, png) if key == "soak" else RENDERERS[key](r)
        lines += [*body, ""]
    text = "\n".join(lines)
    doc.write_text(text, encoding="utf-8")
    return text
