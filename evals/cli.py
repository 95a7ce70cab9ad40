"""The beleg-eval command: run the seed question set and gate on metric thresholds."""
from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.metrics import aggregate
from evals.report import write_report
from evals.runners import (
    DEFAULT_CORPUS,
    DEFAULT_QUESTIONS,
    QuestionFileError,
    load_document_texts,
    load_questions,
    run_http,
    run_in_process,
)

logger = logging.getLogger("evals.cli")

SEED_CHART = (
    "figure_correct", "citation_supported", "quote_valid", "refusal_correct",
    "false_refusal", "figures_grounded", "hit@1", "hit@5", "mrr",
)

# option dest -> (summary metric, "min" | "max")
THRESHOLDS: dict[str, tuple[str, str]] = {
    "min_figure_correct": ("figure_correct", "min"),
    "min_citation_supported": ("citation_supported", "min"),
    "min_quote_valid": ("quote_valid", "min"),
    "min_refusal": ("refusal_correct", "min"),
    "min_grounded": ("figures_grounded", "min"),
    "min_hit1": ("hit@1", "min"),
    "min_hit5": ("hit@5", "min"),
    "min_mrr": ("mrr", "min"),
    "min_pass_rate": ("pass_rate", "min"),
    "max_false_refusal": ("false_refusal", "max"),
    "max_errors": ("n_errors", "max"),
}


# --------------------------------------------------------------------------- thresholds


def _metric(summary: dict[str, Any], name: str) -> float | None:
    value = summary.get("metrics", {}).get(name, summary.get(name))
    return None if value is None else float(value)


def check_thresholds(summary: dict[str, Any], limits: dict[str, float | None]) -> list[str]:
    """Messages for every metric outside its limit; empty when all limits hold."""
    problems: list[str] = []
    for dest, limit in limits.items():
        if limit is None:
            continue
        name, kind = THRESHOLDS[dest]
        value = _metric(summary, name)
        if value is None:
            logger.warning("%s: no applicable questions, --%s not checked",
                           name, dest.replace("_", "-"))
            continue
        if (kind == "min" and value < limit) or (kind == "max" and value > limit):
            word = "below the minimum" if kind == "min" else "above the maximum"
            problems.append(f"{name} = {value:.3f} is {word} {limit:g}")
    return problems


# --------------------------------------------------------------------------- seed run


def _in_process(args: argparse.Namespace, questions: list[dict]) -> tuple[list[dict], str | None]:
    from app.wiring import build_engine  # lazy: the app is heavy and optional for HTTP runs

    engine = build_engine()
    kwargs = {"mode": args.mode} if args.mode else {}

    def ask(question: str, history: list[dict[str, str]]) -> dict[str, Any]:
        return engine.ask(question, history=history, **kwargs).to_dict()

    rows = run_in_process(questions, ask, engine.document_texts(), progress=not args.quiet)
    return rows, args.mode


def _over_http(args: argparse.Namespace, questions: list[dict]) -> tuple[list[dict], str | None]:
    texts = load_document_texts(args.corpus)
    rows = run_http(questions, args.url, token=args.token, timeout=args.timeout,
                    document_texts=texts, mode=args.mode, progress=not args.quiet)
    return rows, args.mode


def _seen_mode(rows: list[dict[str, Any]]) -> str | None:
    return next((r["mode"] for r in rows if r.get("mode")), None)


def _print_summary(summary: dict[str, Any], out: Path) -> None:
    print(f"beleg-eval seed: {summary['n_questions']} questions "
          f"({summary['n_answerable']} answerable, {summary['n_unanswerable']} unanswerable), "
          f"{summary['n_errors']} errors")
    for name in SEED_CHART:
        value = summary["metrics"].get(name)
        shown = "–" if value is None else f"{value:.3f}"
        print(f"  {name:<20} {shown:>7}  (n={summary['support'].get(name, 0)})")
    lat = summary["latency_ms"]
    if lat["p50"] is not None:
        print(f"  latency p50/p95     {lat['p50']:.0f} / {lat['p95']:.0f} ms")
    print(f"report: {out / 'report.md'}")


def run_seed(args: argparse.Namespace) -> int:
    """Run the seed questions, write the report, and check the thresholds."""
    try:
        questions = load_questions(args.questions)
    except QuestionFileError as exc:
        print(f"beleg-eval: {exc}", file=sys.stderr)
        return 2
    if args.limit is not None:
        questions = questions[: args.limit]
    runner = _over_http if args.url else _in_process
    try:
        rows, mode = runner(args, questions)
    except Exception as exc:  # setup failed before any question could be asked
        logger.debug("setup failed", exc_info=True)
        print(f"beleg-eval: cannot start the run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    summary = aggregate(rows)
    chart = {name: summary["metrics"].get(name) for name in SEED_CHART}
    chart["error_rate"] = summary["error_rate"]
    metadata = {
        "suite": "seed",
        "mode": mode or _seen_mode(rows),
        "target": args.url or "in-process",
        "questions": str(args.questions),
        "limit": args.limit,
    }
    out = Path(args.out)
    write_report(out, summary, rows, "beleg seed evaluation", chart, metadata=metadata)
    _print_summary(summary, out)
    problems = check_thresholds(summary, {d: getattr(args, d) for d in THRESHOLDS})
    for problem in problems:
        print(f"beleg-eval: threshold failed: {problem}", file=sys.stderr)
    return 1 if problems else 0


# --------------------------------------------------------------------------- parser


def _add_seed_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("seed", help="run the seed question set")
    p.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS,
                   help="JSONL question file (default: the packaged seed set)")
    p.add_argument("--url", help="ask a running beleg at this base URL instead of in-process")
    p.add_argument("--token", default=os.environ.get("BELEG_API_TOKEN") or None,
                   help="bearer token for --url (default: $BELEG_API_TOKEN)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per HTTP request")
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS,
                   help="corpus folder the HTTP server indexed (for checking citations)")
    p.add_argument("--mode", help="answer mode to request")
    p.add_argument("--out", type=Path, required=True, help="report folder")
    p.add_argument("--limit", type=int, help="ask only the first N questions")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    gate = p.add_argument_group("thresholds (exit code 1 when violated)")
    for dest, (name, kind) in THRESHOLDS.items():
        gate.add_argument("--" + dest.replace("_", "-"), dest=dest, type=float, metavar="X",
                          help=f"{kind}imum {name}")
    p.set_defaults(func=run_seed)


def _add_xquad_parser(subparsers: Any) -> None:
    """XQuAD benchmark: the subcommand is registered by evals.xquad when that module exists."""
    if importlib.util.find_spec("evals.xquad") is None:
        return
    from evals.xquad import add_xquad_parser  # lazy: owned and filled in separately

    add_xquad_parser(subparsers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="beleg-eval", description="Evaluate beleg's answers.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_seed_parser(subparsers)
    _add_xquad_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the beleg-eval console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
