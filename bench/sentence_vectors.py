"""Stored sentence vectors read back versus embedded again at question time: evidence time per
question with a cold sentence cache, both ways side by side in one process over the seed
questions, plus how far the two sets of vectors differ and whether selection changes.

Prints Markdown and writes reports/bench/sentence_vectors.json. Not part of `make test`.
"""
from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.answer.evidence import SentenceVectors  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.wiring import build_engine, build_library  # noqa: E402

logger = logging.getLogger("bench.sentence_vectors")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    questions = [json.loads(line)["user_input"] for line in
                 (REPO / "evals" / "data" / "seed_questions.jsonl").read_text(
                     encoding="utf-8").splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load(env={}, data_dir=Path(tmp), llm="extractive")
        build_library(settings=settings).add_paths([REPO / "corpus"])
        engine = build_engine(settings)
        read_back = engine._read_stored_vectors
        times: dict[str, list[float]] = {"embedded": [], "read back": []}
        diffs, same = [], 0
        for q in questions:
            picks = {}
            for way in ("embedded", "read back"):  # alternate, so drift hits both alike
                engine.vectors = SentenceVectors(engine.retriever.embedder)  # a cold cache
                engine._read_stored_vectors = read_back if way == "read back" else (
                    lambda *_: None)
                t0 = time.perf_counter()
                _, ev = engine.evidence(q)
                times[way].append((time.perf_counter() - t0) * 1000)
                picks[way] = engine.selector.select(ev)
                if way == "read back" and ev.candidates:
                    texts = [c.sentence.text for c in ev.candidates]
                    fresh = engine.retriever.embedder.embed_passages(texts)
                    stored = engine.vectors(texts)
                    diffs.append(float(abs(fresh - stored).max()))
            a, b = picks["embedded"], picks["read back"]
            same += (a.kind, [c.sentence.start for c in a.ranked[:3]]) == \
                (b.kind, [c.sentence.start for c in b.ranked[:3]])
    row = {k: {"p50_ms": round(statistics.median(v), 1), "mean_ms": round(statistics.mean(v), 1)}
           for k, v in times.items()}
    out = {"cores": os.cpu_count(), "questions": len(questions), "evidence": row,
           "max_abs_vector_difference": max(diffs) if diffs else None,
           "same_selection": same}
    (REPO / "reports" / "bench").mkdir(parents=True, exist_ok=True)
    (REPO / "reports" / "bench" / "sentence_vectors.json").write_text(json.dumps(out, indent=1))
    logger.info("| sentence vectors | evidence p50 (ms) | mean (ms) |\n|---|---|---|")
    for k, v in row.items():
        logger.info("| %s | %.1f | %.1f |", k, v["p50_ms"], v["mean_ms"])
    logger.info("max |stored - embedded| = %s; same selection for %d of %d questions",
                out["max_abs_vector_difference"], same, len(questions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
