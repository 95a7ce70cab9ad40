"""`make bench-scale`: one embedded store at 10k, 100k and 1M chunks: write throughput,
retrieval p50/p95, the first question after a write, RSS and disk, plotted as a PNG.

The text and the vectors are synthetic (embedding a million real chunks would take days on two
cores): documents of Zipf-distributed pseudo-words, and a bag-of-words embedder whose vectors
are sums of fixed random word vectors, so a question made of a chunk's words finds that chunk
by meaning and by words, as a real one does. Everything else is beleg's own path: Library
(chunking, sentences, titles), ChunkStore on an embedded Chroma, HybridRetriever with its
BM25 index kept where `beleg serve` keeps it.

Each size is built by one process and read by a fresh one (clean RSS, a cold start).
Writes reports/bench/scale.json and reports/bench/scale.png. Not part of `make test`.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

logger = logging.getLogger("bench.scale")
DIM = 384  # multilingual-e5-small's width: the store holds vectors of the default model's size
VOCAB = 40_000
ZIPF = 1.1  # word frequencies of natural text follow roughly 1/rank^1.1
PARAGRAPHS_PER_DOC = 100  # a long report per document: fewer, larger writes
SENTENCES_PER_PARAGRAPH = 3
QUESTIONS = 60
QUESTION_WORDS = 6


class SyntheticEmbedder:
    """Bag of words: a text's vector is the normalised sum of fixed random word vectors, each
    weighted by how telling its word is (-log of its frequency), as a trained model gives the
    frequent words little say. Without the weights every paragraph points the same way (its
    frequent words) and questions, made of rare words, would all lie off that direction."""

    name = "synthetic-bag-of-words"
    dim = DIM

    def __init__(self, words: list[str], p: np.ndarray) -> None:
        self._ids = {w.lower(): i for i, w in enumerate(words)}
        rows = [np.random.default_rng(zlib.crc32(w.encode())).standard_normal(DIM)
                for w in words]
        self._matrix = (np.asarray(rows, dtype=np.float32)
                        * -np.log(p).astype(np.float32)[:, None])

    def _embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, t in enumerate(texts):
            ids = [self._ids[w] for w in t.lower().replace(".", " ").split() if w in self._ids]
            if ids:
                out[i] = self._matrix[ids].sum(axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._embed(list(texts))

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._embed(list(texts))


def vocabulary(rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    syllables = [c + v for c in "bdfgklmnprstwz" for v in ("a", "e", "i", "o", "u", "ei", "au")]
    words = sorted({"".join(rng.choice(syllables, rng.integers(2, 5))) for _ in range(VOCAB * 2)})
    words = list(rng.permutation(words)[:VOCAB])
    weights = 1.0 / np.arange(1, len(words) + 1) ** ZIPF
    return words, weights / weights.sum()


def document_text(rng: np.random.Generator, words: list[str], p: np.ndarray) -> str:
    lengths = rng.integers(14, 23, PARAGRAPHS_PER_DOC * SENTENCES_PER_PARAGRAPH)
    ids = iter(rng.choice(len(words), int(lengths.sum()), p=p))
    sentences = []
    for n in lengths:
        s = " ".join(words[next(ids)] for _ in range(n))
        sentences.append(s[0].upper() + s[1:] + ".")
    return "\n\n".join(" ".join(sentences[i:i + SENTENCES_PER_PARAGRAPH])
                       for i in range(0, len(sentences), SENTENCES_PER_PARAGRAPH))


def question_of(paragraph: str, rank: dict[str, int], rng: np.random.Generator) -> str:
    """A question as people ask one: a few of the paragraph's rarest (most telling) words."""
    distinct = {w.lower() for w in paragraph.replace(".", " ").split()}
    telling = sorted(distinct, key=lambda w: -rank[w])[:QUESTION_WORDS]
    return " ".join(rng.permutation(telling))


def rss_mb() -> dict[str, float]:
    """Resident and peak resident memory of this process (Linux /proc)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def disk_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)


def build(chunks: int, data: Path) -> dict[str, Any]:
    """Ingest synthetic documents until the store holds ``chunks`` chunks; write the questions."""
    from app.library import Library
    from ingest.documents import Document
    from store.collection import ChunkStore, connect

    rng = np.random.default_rng(7)
    words, p = vocabulary(rng)
    rank = {w: i for i, w in enumerate(words)}
    embedder = SyntheticEmbedder(words, p)
    store = ChunkStore(connect(path=data / "chroma"), "scale", embedder.name, embedder.dim)
    library = Library(store, embedder)
    made, docs, t_embed, questions = 0, 0, 0.0, []
    real_embed = embedder.embed_passages

    def timed_embed(texts: list[str]) -> np.ndarray:
        nonlocal t_embed
        t = time.perf_counter()
        try:
            return real_embed(texts)
        finally:
            t_embed += time.perf_counter() - t

    embedder.embed_passages = timed_embed  # type: ignore[method-assign]
    every = max(1, chunks // PARAGRAPHS_PER_DOC // QUESTIONS)  # documents between questions
    per_doc = min(PARAGRAPHS_PER_DOC, max(1, -(-QUESTIONS * PARAGRAPHS_PER_DOC // chunks)))
    t0 = time.perf_counter()
    while made < chunks:
        text = document_text(rng, words, p)
        library.add_document(Document(source=f"doc{docs:06d}.txt", text=text))
        docs += 1
        made = store.count()
        if docs % every == 0 and len(questions) < QUESTIONS:  # spread over the whole store
            paragraphs = text.split("\n\n")
            for i in rng.choice(len(paragraphs), per_doc, replace=False):
                questions.append({"q": question_of(paragraphs[i], rank, rng),
                                  "source": f"doc{docs - 1:06d}.txt", "paragraph": paragraphs[i]})
        if docs % 200 == 0:
            logger.info("%d chunks in %.0f s", made, time.perf_counter() - t0)
    total = time.perf_counter() - t0
    (data / "questions.json").write_text(json.dumps(questions[:QUESTIONS]))
    built = {"chunks": made, "documents": docs, "sentences": int(store._sentences.count()),
            "ingest_s": round(total, 1), "embed_s": round(t_embed, 1),
            "chunks_per_s": round(made / total, 1),
            "store_chunks_per_s": round(made / max(total - t_embed, 1e-9), 1),
            "build_rss_mb": rss_mb()}
    (data / "built.json").write_text(json.dumps(built))
    return built


def read(data: Path) -> dict[str, Any]:
    """Open the built store in a fresh process: the first question (BM25 built), warm
    questions, one more document and the question after it."""
    from app.library import Library
    from ingest.documents import Document
    from store.collection import ChunkStore, connect
    from store.retrieval import HybridRetriever

    words, p = vocabulary(np.random.default_rng(7))
    embedder = SyntheticEmbedder(words, p)
    questions = json.loads((data / "questions.json").read_text())
    t = time.perf_counter()
    store = ChunkStore(connect(path=data / "chroma"), "scale", embedder.name, embedder.dim,
                       create=False)
    retriever = HybridRetriever(store, embedder, index_dir=data / "lexical")
    open_s = time.perf_counter() - t
    out: dict[str, Any] = {"open_s": round(open_s, 2), "rss_open_mb": rss_mb()}

    def ask(q: str) -> tuple[float, list[Any]]:
        t = time.perf_counter()
        hits = retriever.search(q, k=10)
        return (time.perf_counter() - t) * 1000, hits

    out["first_question_ms"] = round(ask(questions[0]["q"])[0], 1)
    # a restarted server: the saved index is read back instead of built from the store
    retriever = HybridRetriever(store, embedder, index_dir=data / "lexical")
    out["first_question_saved_index_ms"] = round(ask(questions[0]["q"])[0], 1)
    times, found = [], 0
    for row in questions:
        ms, hits = ask(row["q"])
        times.append(ms)
        found += any(h.chunk.source == row["source"] and h.chunk.text == row["paragraph"]
                     for h in hits)
    out["retrieval_ms"] = {"p50": round(statistics.median(times), 1),
                           "p95": round(float(np.percentile(times, 95)), 1), "n": len(times)}
    out["hit_at_10"] = round(found / len(questions), 3)
    out["rss_warm_mb"] = rss_mb()
    rng = np.random.default_rng(11)
    text = document_text(rng, words, p)
    t = time.perf_counter()
    name = f"one-more-{os.getpid()}.txt"  # new on every run, so it is written
    Library(store, embedder).add_document(Document(source=name, text=text))
    out["one_document_write_s"] = round(time.perf_counter() - t, 2)
    out["question_after_write_ms"] = round(ask(questions[1]["q"])[0], 1)
    out["rss_after_write_mb"] = rss_mb()
    out["disk_mb"] = disk_mb(data)
    return out


def child(role: str, chunks: int, data: Path) -> dict[str, Any]:
    return build(chunks, data) if role == "build" else read(data)


def run_child(role: str, chunks: int, data: Path) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ANONYMIZED_TELEMETRY": "False"}
    out = subprocess.run([sys.executable, __file__, "--child", role, str(chunks), str(data)],
                         env=env, cwd=REPO, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{role} {chunks}: {out.stderr[-3000:]}")
    return json.loads(out.stdout.splitlines()[-1])


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["chunks"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    a.plot(n, [r["retrieval_ms"]["p50"] for r in rows], "o-", label="retrieval p50")
    a.plot(n, [r["retrieval_ms"]["p95"] for r in rows], "o--", label="retrieval p95")
    a.plot(n, [r["question_after_write_ms"] for r in rows], "s:", label="first question after a write")
    a.set(xscale="log", yscale="log", xlabel="chunks", ylabel="ms",
          title="Question latency (hybrid retrieval, k=10)")
    a.legend()
    b.plot(n, [r["rss_warm_mb"]["VmRSS"] for r in rows], "o-", label="RSS of a reader (MB)")
    b.plot(n, [r["disk_mb"] for r in rows], "o--", label="disk (MB)")
    b.set(xscale="log", yscale="log", xlabel="chunks", title="Memory and disk")
    b.legend()
    fig.suptitle(f"beleg, embedded Chroma, {os.cpu_count()} cores, synthetic text and vectors")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000",
                        help="chunk counts, comma-separated")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "bench")
    parser.add_argument("--keep", type=Path, help="build the stores here and keep them")
    parser.add_argument("--reuse", type=Path, nargs="+",
                        help="read stores kept by an earlier --keep run instead of building")
    parser.add_argument("--child", nargs=3, metavar=("ROLE", "CHUNKS", "DIR"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        role, chunks, data = args.child
        print(json.dumps(child(role, int(chunks), Path(data))))
        return 0
    rows = []
    for kept in args.reuse or []:
        built = json.loads((kept / "built.json").read_text())
        rows.append({**built, **run_child("read", built["chunks"], kept)})
        logger.info("read %s: %s", kept, rows[-1])
    for size in ([] if args.reuse else (int(s) for s in args.sizes.split(","))):
        root = Path(tempfile.mkdtemp(prefix="beleg-scale-", dir=args.keep))
        try:
            logger.info("building %d chunks in %s", size, root)
            built = run_child("build", size, root)
            logger.info("built: %s", built)
            read_out = run_child("read", size, root)
            logger.info("read: %s", read_out)
            rows.append({**built, **read_out})
        finally:
            if args.keep is None:
                shutil.rmtree(root, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale.json").write_text(json.dumps(
        {"cores": os.cpu_count(), "synthetic": True, "dim": DIM, "rows": rows}, indent=1))
    plot(rows, args.out / "scale.png")
    logger.info("| chunks | sentences | ingest chunks/s (store only) | retrieval p50 / p95 ms "
                "| first question after a write ms | reader RSS MB | disk MB | hit@10 |\n"
                "|---|---|---|---|---|---|---|---|")
    for r in rows:
        logger.info("| %d | %d | %.0f (%.0f) | %.1f / %.1f | %.0f | %.0f | %.0f | %.2f |",
                    r["chunks"], r["sentences"], r["chunks_per_s"], r["store_chunks_per_s"],
                    r["retrieval_ms"]["p50"], r["retrieval_ms"]["p95"],
                    r["question_after_write_ms"], r["rss_warm_mb"]["VmRSS"], r["disk_mb"],
                    r["hit_at_10"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
