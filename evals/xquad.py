"""XQuAD-style retrieval benchmark: any SQuAD-format file, de->de and translated-question ->de."""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.documents import Document

logger = logging.getLogger(__name__)

MODES = ("hybrid", "dense", "lexical")


@dataclass(frozen=True)
class Question:
    """A benchmark question with its gold answer span in its article's document text."""

    id: str
    question: str
    source: str
    start: int
    end: int
    answer: str


def load_squad(path: Path) -> tuple[list[Document], list[Question]]:
    """Articles as Documents (paragraphs joined by a blank line) and their questions."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a SQuAD-format JSON file: {exc}") from exc
    if not isinstance(data, list):
        raise ValueError(f"{path} is not a SQuAD-format JSON file: 'data' must be a list")
    docs: list[Document] = []
    questions: list[Question] = []
    for a_index, article in enumerate(data):
        source = f"{a_index:03d}_{article.get('title', 'article')}"
        parts: list[str] = []
        offset = 0
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                ans = qa["answers"][0]
                start = offset + int(ans["answer_start"])
                questions.append(Question(id=str(qa["id"]), question=qa["question"],
                                          source=source, start=start,
                                          end=start + len(ans["text"]), answer=ans["text"]))
            parts.append(context)
            offset += len(context) + 2
        docs.append(Document(source=source, text="\n\n".join(parts), metadata={}))
    return docs, questions


def parallel_questions(questions: list[Question], translated: list[Question]) -> list[Question]:
    """Questions of the translated file, carrying the gold spans of the original file."""
    by_id = {q.id: q for q in questions}
    out = []
    for t in translated:
        gold = by_id.get(t.id)
        if gold is not None:
            out.append(Question(id=t.id, question=t.question, source=gold.source,
                                start=gold.start, end=gold.end, answer=gold.answer))
    if not out and len(questions) == len(translated):  # ids differ: fall back to position
        out = [Question(id=g.id, question=t.question, source=g.source, start=g.start,
                        end=g.end, answer=g.answer) for g, t in zip(questions, translated)]
    return out


def _rank_of_hit(hits: list[Any], q: Question) -> int | None:
    for rank, hit in enumerate(hits, 1):
        c = hit.chunk
        if c.source == q.source and c.start <= q.start and q.end <= c.end:
            return rank
    return None


def score_ranks(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks)
    if not n:
        return {"hit@1": 0.0, "hit@5": 0.0, "mrr": 0.0, "n": 0}
    return {"hit@1": sum(r == 1 for r in ranks) / n,
            "hit@5": sum(r is not None and r <= 5 for r in ranks) / n,
            "mrr": sum(1 / r for r in ranks if r) / n, "n": n}


def evaluate(retriever: Any, sets: dict[str, list[Question]], k: int = 5,
             progress: bool = True) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """hit@1, hit@5 and MRR for each question set and retrieval mode, in one pass."""
    from tqdm import tqdm

    ranks: dict[str, dict[str, list[int | None]]] = {m: {s: [] for s in sets} for m in MODES}
    latencies: list[float] = []
    rows: list[dict[str, Any]] = []
    for lang, qs in sets.items():
        for q in tqdm(qs, desc=f"xquad {lang}", disable=not progress):
            t0 = time.perf_counter()
            vec = retriever.embedder.embed_queries([q.question])[0]
            hybrid = retriever.search(q.question, k, mode="hybrid", query_vector=vec)
            latencies.append((time.perf_counter() - t0) * 1000)
            row = {"id": q.id, "language": lang, "user_input": q.question, "reference": q.answer}
            for mode, hits in (("hybrid", hybrid),
                               ("dense", retriever.search(q.question, k, mode="dense",
                                                          query_vector=vec)),
                               ("lexical", retriever.search(q.question, k, mode="lexical"))):
                r = _rank_of_hit(hits, q)
                ranks[mode][lang].append(r)
                row[f"rank_{mode}"] = r
            rows.append(row)
    summary: dict[str, Any] = {lang: score_ranks(ranks["hybrid"][lang]) for lang in sets}
    summary["baselines"] = {
        "bm25": {lang: score_ranks(ranks["lexical"][lang]) for lang in sets},
        "dense": {lang: score_ranks(ranks["dense"][lang]) for lang in sets}}
    if latencies:
        lat = sorted(latencies)
        summary["latency_ms"] = {"p50": statistics.median(lat),
                                 "p95": lat[min(len(lat) - 1, int(0.95 * len(lat)))]}
    return summary, rows


def run_xquad(de_file: Path, out_dir: Path, translated: Path | None = None,
              build: Callable[[Path], Any] | None = None, limit: int | None = None,
              progress: bool = True) -> dict[str, Any]:
    """Ingest every article into a fresh store under out_dir and measure retrieval."""
    import shutil

    if (out_dir / "store").exists():
        shutil.rmtree(out_dir / "store")
    docs, questions = load_squad(de_file)
    sets = {"de": questions}
    if translated is not None:
        sets["en"] = parallel_questions(questions, load_squad(translated)[1])
    if limit:
        sets = {k: v[:limit] for k, v in sets.items()}
    if build is None:
        from app.wiring import build_library

        build = build_library
    library = build(out_dir / "store")
    t0 = time.perf_counter()
    for doc in docs:
        library.add_document(doc)
    ingest_s = time.perf_counter() - t0
    from store.retrieval import HybridRetriever

    retriever = HybridRetriever(library.store, library.embedder)
    summary, rows = evaluate(retriever, sets, progress=progress)
    chunks = retriever.lexical().chunks
    lengths = sorted(len(c.text) for c in chunks)
    summary["corpus"] = {"documents": len(docs), "chunks": len(chunks),
                         "chunk_chars_median": statistics.median(lengths) if lengths else 0,
                         "chunk_chars_max": lengths[-1] if lengths else 0,
                         "ingest_seconds": round(ingest_s, 2),
                         "embedding": library.embedder.name}
    _write(out_dir, summary, rows)
    return summary


def _write(out_dir: Path, summary: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    chart = {f"{lang} hit@1": summary[lang]["hit@1"] for lang in ("de", "en") if lang in summary}
    chart.update({f"{lang} mrr": summary[lang]["mrr"] for lang in ("de", "en") if lang in summary})
    from evals.report import write_report

    write_report(out_dir, summary, rows, title="XQuAD retrieval", chart_metrics=chart)


def markdown_table(summary: dict[str, Any]) -> str:
    """The main figures as a Markdown table: hybrid beside both baselines."""
    lines = ["| retriever | lang | hit@1 | hit@5 | MRR | n |", "|---|---|---|---|---|---|"]
    for name, block in (("hybrid", summary), ("dense", summary["baselines"]["dense"]),
                        ("bm25", summary["baselines"]["bm25"])):
        for lang in ("de", "en"):
            if lang in block:
                s = block[lang]
                lines.append(f"| {name} | {lang} | {s['hit@1']:.3f} | {s['hit@5']:.3f} | "
                             f"{s['mrr']:.3f} | {s['n']} |")
    return "\n".join(lines)


def add_xquad_parser(subparsers: Any) -> None:
    """Register `beleg-eval xquad`."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "xquad", help="XQuAD/SQuAD benchmark: retrieval, or with --answers the whole answer path")
    p.add_argument("de_file", type=Path, help="SQuAD-format file whose articles form the corpus")
    p.add_argument("--translated-questions", type=Path, default=None,
                   help="parallel file whose questions are asked against the first file's articles")
    p.add_argument("--out", type=Path, required=True, help="folder for the store and the report")
    p.add_argument("--limit", type=int, default=None,
                   help="ask only N questions per language (a seeded sample with --answers)")
    p.add_argument("--answers", action="store_true",
                   help="ask every question through the answer engine and score the answers")
    p.add_argument("--modes", default="extractive,generated",
                   help="with --answers: comma-separated answer modes (extractive, generated)")
    p.add_argument("--seed", type=int, default=13, help="seed of the sample and of the split")
    p.add_argument("--unanswerable-split", action="store_true",
                   help="with --answers: first ingest a seeded half of the articles and ask all "
                        "questions (the other half's must be refused), then ingest the rest")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--min-hit1-de", type=float, default=None)
    p.add_argument("--min-hit1-en", type=float, default=None)
    p.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    if args.answers:
        return _cli_answers(args)
    summary = run_xquad(args.de_file, args.out, args.translated_questions, limit=args.limit,
                        progress=not args.quiet)
    print(markdown_table(summary))
    failed = []
    for lang, floor in (("de", args.min_hit1_de), ("en", args.min_hit1_en)):
        if floor is not None and lang in summary and summary[lang]["hit@1"] < floor:
            failed.append(f"{lang} hit@1 {summary[lang]['hit@1']:.3f} < {floor}")
    if failed:
        print("REGRESSION: " + "; ".join(failed))
        return 1
    return 0


def _cli_answers(args: argparse.Namespace) -> int:
    from evals import xquad_answers as xa
    from evals.fresh import build_stack
    from evals.report import write_report

    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    unknown = [m for m in modes if m not in ("extractive", xa.GENERATED)]
    if unknown:
        print(f"beleg-eval xquad: unknown mode(s) {unknown}; use extractive and/or generated")
        return 2
    with_llm = xa.GENERATED in modes
    stacks: list[Any] = []

    def factory(docs: list[Document]) -> Any:
        stack = build_stack(args.out / "store", docs, with_llm=with_llm)
        if with_llm and stack.engine.llm is None:
            logger.warning("no LLM is configured (BELEG_LLM=extractive): 'generated' answers "
                           "are extractive")
        stacks.append(stack)
        return stack

    summary, rows = xa.run(args.de_file, args.translated_questions, factory, modes=modes,
                           limit=args.limit, seed=args.seed,
                           unanswerable_split=args.unanswerable_split, progress=not args.quiet)
    engine = stacks[0].engine
    meta = {"suite": "xquad-answers", "file": str(args.de_file),
            "translated": str(args.translated_questions), "llm": engine.default_mode,
            "embedding": stacks[0].library.embedder.name,
            "normalisation": "SQuAD v1.1 + German articles (evals/squad.py)"}
    write_report(args.out, summary, rows, "XQuAD end to end", xa.chart_metrics(summary),
                 metadata=meta, lower_is_better=xa.LOWER_IS_BETTER)
    print(xa.markdown(summary))
    return 0

