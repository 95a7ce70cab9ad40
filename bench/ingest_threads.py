"""Ingest time of the German XQuAD dev articles with 1 and with 2 torch threads, each in a
process of its own (torch's thread pool is process-wide), run one after the other.

Prints Markdown and writes reports/bench/ingest_threads.json. Not part of `make test`.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
logger = logging.getLogger("bench.ingest_threads")


def child(threads: int, data: Path) -> float:
    sys.path.insert(0, str(REPO))
    from app.library import IngestReport, Library
    from app.settings import Settings
    from evals.xquad import load_squad
    from store.collection import ChunkStore, connect
    from store.st_embedder import SentenceTransformerEmbedder

    settings = Settings.load(env={})
    embedder = SentenceTransformerEmbedder(settings.embedding, cache_dir=settings.models_dir,
                                           threads=threads)
    store = ChunkStore(connect(path=data), "bench", embedder.name, embedder.dim)
    docs, _ = load_squad(REPO / "evals" / "data" / "xquad" / "xquad.de.dev.json")
    library = Library(store, embedder)
    t0 = time.perf_counter()
    library.add_documents(docs, IngestReport())  # as `beleg ingest`: one embedding call
    return time.perf_counter() - t0


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if len(sys.argv) == 3:  # the child: threads, data folder
        print(json.dumps(child(int(sys.argv[1]), Path(sys.argv[2]))))
        return 0
    rows = {}
    for threads in (1, 2, 1, 2):  # twice each, interleaved, against drift
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
            out = subprocess.run([sys.executable, __file__, str(threads), tmp], env=env,
                                 cwd=REPO, capture_output=True, text=True, check=True)
            rows.setdefault(threads, []).append(round(json.loads(out.stdout.splitlines()[-1]), 1))
    (REPO / "reports" / "bench").mkdir(parents=True, exist_ok=True)
    (REPO / "reports" / "bench" / "ingest_threads.json").write_text(json.dumps(
        {"cores": os.cpu_count(), "ingest_s": rows}, indent=1))
    logger.info("| torch threads | ingest of XQuAD de dev (s), two runs |\n|---|---|")
    for threads, times in rows.items():
        logger.info("| %d | %s |", threads, ", ".join(str(t) for t in times))
    return 0


if __name__ == "__main__":
    sys.exit(main())
