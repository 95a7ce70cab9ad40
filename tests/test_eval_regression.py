"""Regression gate run by CI: the seed question set (extractive) and an XQuAD subset, with floors.

The floors sit a little below the figures measured when they were set (see docs/evaluation.md);
a real regression in retrieval, the gate or citations fails the build.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evals.metrics import aggregate
from evals.runners import load_questions, run_in_process
from evals.xquad import run_xquad

REPO = Path(__file__).resolve().parents[1]
XQUAD = REPO / "evals" / "data" / "xquad"

pytestmark = pytest.mark.slow


def test_seed_set_extractive_floors(seed_engine: Any) -> None:
    questions = load_questions()
    rows = run_in_process(questions, lambda q, h: seed_engine.ask(q, history=h).to_dict(),
                          seed_engine.document_texts(), progress=False)
    summary = aggregate(rows)
    m = summary["metrics"]
    assert summary["n_errors"] == 0
    assert m["quote_valid"] == 1.0          # every quote is exactly its span
    assert m["figures_grounded"] == 1.0     # no figure outside its cited span
    assert m["refusal_correct"] >= 0.80
    assert m["false_refusal"] <= 0.20
    assert m["figure_correct"] >= 0.55
    assert m["citation_supported"] >= 0.60


def test_xquad_subset_floors(tmp_path: Path, seed_settings: Any) -> None:
    from dataclasses import replace

    from app.wiring import build_library

    summary = run_xquad(XQUAD / "xquad.de.dev.json", tmp_path, XQUAD / "xquad.en.dev.json",
                        build=lambda d: build_library(settings=replace(seed_settings, data_dir=d)),
                        limit=200, progress=False)
    assert summary["de"]["n"] == 200 and summary["en"]["n"] == 200
    assert summary["de"]["hit@1"] >= 0.90
    assert summary["en"]["hit@1"] >= 0.78
    # the fusion never loses to the better baseline by more than noise
    for lang in ("de", "en"):
        best = max(summary["baselines"]["dense"][lang]["mrr"], summary["baselines"]["bm25"][lang]["mrr"])
        assert summary[lang]["mrr"] >= best - 0.01
    assert (tmp_path / "report.json").is_file() and (tmp_path / "report.md").is_file()
