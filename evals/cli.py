"""The beleg-eval command: seed, domain, claim and XQuAD suites, with metric thresholds."""
from __future__ import annotations

import argparse
import importlib.util
import json
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
    load_questions,
    run_http,
    run_in_process,
)

logger = logging.getLogger("evals.cli")

SEED_CHART = (
    "answer_correct", "right_and_cited", "figure_correct", "citation_supported", "quote_valid",
    "refusal_correct", "false_refusal", "confidently_wrong", "figures_grounded", "hit@1",
    "hit@5", "mrr",
)

LOWER_IS_BETTER = ("false_refusal", "confidently_wrong", "error_rate")

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


# --------------------------------------------------------------------------- question runs


def _in_process(args: argparse.Namespace, questions: list[dict],
                documents: list[Any]) -> tuple[list[dict], str | None]:
    """Ask in-process, over a fresh store that holds exactly the run's documents."""
    from evals.fresh import build_stack  # lazy: the app is heavy

    stack = build_stack(Path(args.out) / "store", documents,
                        with_llm=args.mode != "extractive")
    kwargs = {"mode": args.mode} if args.mode else {}

    def ask(question: str, history: list[dict[str, str]]) -> dict[str, Any]:
        return stack.engine.ask(question, history=history, **kwargs).to_dict()

    rows = run_in_process(questions, ask, stack.texts, progress=not args.quiet)
    return rows, args.mode or stack.engine.default_mode


def _over_http(args: argparse.Namespace, questions: list[dict],
               documents: list[Any]) -> tuple[list[dict], str | None]:
    texts = {d.source: d.text for d in documents}
    rows = run_http(questions, args.url, token=args.token, timeout=args.timeout,
                    document_texts=texts, mode=args.mode, progress=not args.quiet)
    return rows, args.mode


def _seen_mode(rows: list[dict[str, Any]]) -> str | None:
    return next((r["mode"] for r in rows if r.get("mode")), None)


def _print_summary(suite: str, summary: dict[str, Any], out: Path) -> None:
    print(f"beleg-eval {suite}: {summary['n_questions']} questions "
          f"({summary['n_answerable']} answerable, {summary['n_unanswerable']} unanswerable), "
          f"{summary['n_errors']} errors")
    for name in SEED_CHART:
        value = summary["metrics"].get(name)
        shown = "–" if value is None else f"{value:.3f}"
        print(f"  {name:<20} {shown:>7}  (n={summary['support'].get(name, 0)})")
    for name, group in summary.get("by_set", {}).items():
        print(f"  set {name:<18} n={group['n']:<3} right_and_cited="
              f"{_f(group.get('right_and_cited'))} refusal_correct="
              f"{_f(group.get('refusal_correct'))} false_refusal={_f(group.get('false_refusal'))}"
              f" confidently_wrong={_f(group.get('confidently_wrong'))}")
    lat = summary["latency_ms"]
    if lat["p50"] is not None:
        print(f"  latency p50/p95     {lat['p50']:.0f} / {lat['p95']:.0f} ms")
    print(f"report: {out / 'report.html'}")


def _f(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _run_questions(args: argparse.Namespace, suite: str, questions: list[dict],
                   documents: list[Any], title: str) -> int:
    """Ask, score, write the report and check the thresholds; returns the exit code."""
    if args.limit is not None:
        questions = questions[: args.limit]
    runner = _over_http if args.url else _in_process
    try:
        rows, mode = runner(args, questions, documents)
    except Exception as exc:  # setup failed before any question could be asked
        logger.debug("setup failed", exc_info=True)
        print(f"beleg-eval: cannot start the run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    summary = aggregate(rows)
    chart = {name: summary["metrics"].get(name) for name in SEED_CHART}
    chart["error_rate"] = summary["error_rate"]
    metadata = {"suite": suite, "mode": mode or _seen_mode(rows),
                "target": args.url or "in-process (fresh store)",
                "documents": sorted(d.source for d in documents), "limit": args.limit}
    out = Path(args.out)
    write_report(out, summary, rows, title, chart, metadata=metadata,
                 lower_is_better=LOWER_IS_BETTER)
    _print_summary(suite, summary, out)
    problems = check_thresholds(summary, {d: getattr(args, d) for d in THRESHOLDS})
    for problem in problems:
        print(f"beleg-eval: threshold failed: {problem}", file=sys.stderr)
    return 1 if problems else 0


def run_seed(args: argparse.Namespace) -> int:
    """The seed question set over the seed corpus alone."""
    from evals.fresh import load_folder

    try:
        questions = load_questions(args.questions)
        documents = load_folder(args.corpus)
    except (QuestionFileError, OSError, ValueError) as exc:
        print(f"beleg-eval: {exc}", file=sys.stderr)
        return 2
    return _run_questions(args, "seed", questions, documents, "beleg seed evaluation")


def run_domains(args: argparse.Namespace) -> int:
    """Every domain set, ingested together with the seed corpus, asked in one run."""
    from evals.domains import corpus_documents, load_domain_questions

    try:
        questions = load_domain_questions(args.root, args.sets)
        documents = corpus_documents(args.root, args.corpus)
    except (QuestionFileError, OSError, ValueError) as exc:
        print(f"beleg-eval: {exc}", file=sys.stderr)
        return 2
    if not questions:
        print(f"beleg-eval: no domain sets under {args.root}", file=sys.stderr)
        return 2
    return _run_questions(args, "domains", questions, documents, "beleg domain sets")


def run_claims(args: argparse.Namespace) -> int:
    """The claim benchmark through the answer layer's claim check."""
    from evals import claims as cb
    from evals.checkers import verifier_checker
    from evals.domains import corpus_documents

    try:
        items = cb.load_claims(args.claims)
        documents = {d.source: d for d in corpus_documents(args.root, args.corpus)}
    except (cb.ClaimFileError, OSError, ValueError) as exc:
        print(f"beleg-eval: {exc}", file=sys.stderr)
        return 2
    items = cb.select_split(items, args.split)
    if args.limit is not None:
        items = items[: args.limit]
    from app.settings import Settings
    from app.wiring import build_embedder, pin_threads
    from ingest.chunking import chunk_document

    settings = Settings.load()
    pin_threads(settings.threads)
    embedder = build_embedder(settings)
    rows = cb.run(items, documents, verifier_checker(embedder), chunk_document,
                  progress=not args.quiet)
    summary = cb.summarise(rows)
    splits = cb.summarise_splits(rows)
    summary["by_split"] = splits
    out = Path(args.out)
    write_report(out, summary, rows, "Claim benchmark", cb.chart_metrics(summary),
                 metadata={"suite": "claims", "file": str(args.claims), "split": args.split,
                           "embedding": embedder.name, "check": "app.answer.verification.Verifier"})
    print(f"beleg-eval claims ({args.split}): {summary['n']} claims ({summary['n_supported']} supported, "
          f"{summary['n_unsupported']} unsupported)")
    _print_claim_summary(summary)
    for name, part in splits.items():  # both splits at the end, when the run holds both
        if len(splits) > 1:
            print(f"split {name}: {part['n']} claims ({part['n_supported']} supported, "
                  f"{part['n_unsupported']} unsupported)")
            _print_claim_summary(part)
    print(f"report: {out / 'report.html'}")
    return 0


def _print_claim_summary(summary: dict[str, Any]) -> None:
    for key in ("balanced_accuracy", "supported_precision", "supported_recall",
                "unsupported_recall"):
        print(f"  {key:<22} {_f(summary[key])}")
    for kind, v in summary["unsupported_recall_by_type"].items():
        print(f"  rejects {kind:<16} {_f(v['recall'])}  (n={v['n']})")


# --------------------------------------------------------------------------- parser


def _add_question_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="ask a running beleg at this base URL instead of in-process "
                                 "(it must hold exactly the run's documents)")
    p.add_argument("--token", default=os.environ.get("BELEG_API_TOKEN") or None,
                   help="bearer token for --url (default: $BELEG_API_TOKEN)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per HTTP request")
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS,
                   help="folder of the seed corpus (default: corpus/)")
    p.add_argument("--mode", help="answer mode: extractive, or the configured LLM (default)")
    p.add_argument("--out", type=Path, required=True,
                   help="report folder; the run's private store is built in OUT/store")
    p.add_argument("--limit", type=int, help="ask only the first N questions")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    gate = p.add_argument_group("thresholds (exit code 1 when violated)")
    for dest, (name, kind) in THRESHOLDS.items():
        gate.add_argument("--" + dest.replace("_", "-"), dest=dest, type=float, metavar="X",
                          help=f"{kind}imum {name}")


def _add_seed_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("seed", help="run the seed question set over the seed corpus")
    p.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS,
                   help="JSONL question file (default: the packaged seed set)")
    _add_question_args(p)
    p.set_defaults(func=run_seed)


def _add_domain_parser(subparsers: Any) -> None:
    from evals.domains import DEFAULT_DOMAINS

    p = subparsers.add_parser("domains", help="run the domain sets (all documents together)")
    p.add_argument("--root", type=Path, default=DEFAULT_DOMAINS,
                   help="folder of domain sets (each a folder with a document and questions.jsonl)")
    p.add_argument("--sets", nargs="*", help="only these set names")
    _add_question_args(p)
    p.set_defaults(func=run_domains)


def _add_claims_parser(subparsers: Any) -> None:
    from evals.claims import DEFAULT_CLAIMS, SPLIT_NAMES
    from evals.domains import DEFAULT_DOMAINS

    p = subparsers.add_parser("claims", help="claim benchmark of the answer layer's claim check")
    p.add_argument("--claims", type=Path, default=DEFAULT_CLAIMS, help="JSONL claim file")
    p.add_argument("--root", type=Path, default=DEFAULT_DOMAINS, help="folder of domain sets")
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="seed corpus folder")
    p.add_argument("--out", type=Path, required=True, help="report folder")
    p.add_argument("--split", choices=SPLIT_NAMES, default="all",
                   help="claims of the dev documents, the held-out documents, or all (default)")
    p.add_argument("--limit", type=int, help="check only the first N claims")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_claims)


def _add_xquad_parser(subparsers: Any) -> None:
    """XQuAD benchmark: the subcommand is registered by evals.xquad when that module exists."""
    if importlib.util.find_spec("evals.xquad") is None:
        return
    from evals.xquad import add_xquad_parser  # lazy: owned and filled in separately

    add_xquad_parser(subparsers)


def _add_calibrate_parser(subparsers: Any) -> None:
    xq = Path(__file__).resolve().parent / "data" / "xquad"
    p = subparsers.add_parser("calibrate", help="fit the answer selection and its thresholds "
                                                "on dev data; measure on held-out data")
    p.add_argument("--xquad", type=Path, default=xq / "xquad.de.dev.json",
                   help="German SQuAD-format file (default: the packaged XQuAD dev half)")
    p.add_argument("--translated-questions", type=Path, default=xq / "xquad.en.dev.json",
                   help="the same questions in English")
    p.add_argument("--seed", type=int, default=7, help="seed of the dev/held-out article split")
    p.add_argument("--out", type=Path, required=True, help="report folder (and its store)")
    p.add_argument("--reuse", action="store_true",
                   help="refit from OUT/rows.json instead of asking every question again")
    p.add_argument("--dry-run", action="store_true",
                   help="measure only; do not write the calibration file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_calibrate)


def run_calibrate(args: argparse.Namespace) -> int:
    from evals.calibrate import run

    report = run(args.out, args.xquad, args.translated_questions, seed=args.seed,
                 write=not args.dry_run, reuse=args.reuse, progress=not args.quiet)
    sys.stdout.write(json.dumps({k: report[k] for k in ("thresholds", "dev_out_of_fold",
                                                        "held_out", "held_out_cosine_top1",
                                                        "held_out_xquad_sentence_top1")
                                 if k in report},
                                indent=1) + "\n")
    return 0


def _add_reliability_parser(subparsers: Any) -> None:
    from evals.reliability.battery import STAGES

    p = subparsers.add_parser("reliability", help="bad inputs, backend faults, crashes, load "
                                                  "and soak against real servers")
    p.add_argument("--out", type=Path, required=True, help="work and results folder")
    p.add_argument("--doc", type=Path, default=None,
                   help="write the markdown report here (e.g. docs/reliability.md)")
    p.add_argument("--stages", default=",".join(STAGES),
                   help=f"comma-separated subset of: {','.join(STAGES)}")
    p.add_argument("--load-seconds", type=float, default=120.0,
                   help="duration of each load run (default 120)")
    p.add_argument("--soak-minutes", type=float, default=30.0,
                   help="duration of the soak (default 30)")
    p.add_argument("--kill-runs", type=int, default=5, help="kill -9 rounds during ingest")
    p.add_argument("--render-only", action="store_true",
                   help="only render OUT/results.json into --doc")
    p.set_defaults(func=run_reliability)


def run_reliability(args: argparse.Namespace) -> int:
    from evals.reliability.battery import STAGES, Battery
    from evals.reliability.report import render

    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        sys.stderr.write(f"error: unknown stages {unknown}; known: {', '.join(STAGES)}\n")
        return 2
    battery = Battery(args.out, load_seconds=args.load_seconds,
                      soak_minutes=args.soak_minutes, kill_runs=args.kill_runs)
    if not args.render_only:
        battery.run(stages)
    if args.doc:
        render(battery.results, args.doc, "make reliability")
    sys.stdout.write(json.dumps(battery.results.get("seconds", {})) + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="beleg-eval", description="Evaluate beleg's answers.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_seed_parser(subparsers)
    _add_domain_parser(subparsers)
    _add_claims_parser(subparsers)
    _add_xquad_parser(subparsers)
    _add_calibrate_parser(subparsers)
    _add_reliability_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the beleg-eval console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    # Warnings only by default: the progress bar is the run's output, not per-question log lines.
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        for noisy in ("bm25s", "sentence_transformers", "httpx", "chromadb"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
