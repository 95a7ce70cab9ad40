"""Regression gate run by CI: seed, domain and claim suites and XQuAD subsets, with floors.

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
    # One question inside the calibrated engine's figures (docs/evaluation.md). Measured with
    # top_k 10 and its refit (2026-12-03): refusal_correct .524 (n=21), false_refusal .417
    # (n=48), figure_correct .593 (n=27), citation_supported .521. With top_k 5 they were .619,
    # .438, .667, .542: the seed set lost 2 refusals, 2 figures and 1 citation for held-out
    # gains (unanswerables refused .854 -> .878, false refusals .237 -> .206 over 1,393 asks).
    assert m["confidently_wrong"] == 0.0    # nothing stated is wrong
    assert m["refusal_correct"] >= 0.47
    assert m["false_refusal"] <= 0.44
    assert m["figure_correct"] >= 0.55
    assert m["citation_supported"] >= 0.50


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


# --------------------------------------------------------------------------- new suites
# Floors 0.02 (or one question) inside the figures measured on exactly these subsets with the
# calibrated extractive engine (docs/evaluation.md); they move up as the answer layer improves.
# Measured (2026-12-03, top_k 10 and its refit): domains answer_correct .437, right_and_cited
# .403, refusal_correct .618 (n=34), false_refusal .462, confidently_wrong .000; claims (all
# 532) balanced accuracy .836, precision .788, supported recall .814, unsupported recall
# .857; XQuAD in XQUAD_FLOORS.
DOMAIN_FLOORS = {"answer_correct": 0.415, "right_and_cited": 0.38, "refusal_correct": 0.59}
DOMAIN_CEILINGS = {"false_refusal": 0.48, "confidently_wrong": 0.02}
CLAIM_FLOORS = {"balanced_accuracy": 0.816, "supported_precision": 0.768,
                "supported_recall": 0.794, "unsupported_recall": 0.837}
# One question inside the measured value (40 questions per language, 22 held out, 18 ingested).
XQUAD_FLOORS = {
    "all/extractive/de": {"contains_gold": 0.875, "cited": 0.875},      # .900, .900
    "all/extractive/en": {"contains_gold": 0.60, "cited": 0.60},        # .625, .625
    "held-out/extractive/de": {"refused": 0.818},                       # .864
    "held-out/extractive/en": {"refused": 0.954},                       # 1.000
    "ingested/extractive/de": {"false_refusal": 0.112},                 # .056
    "ingested/extractive/en": {"false_refusal": 0.278},                 # .222
}


@pytest.fixture(scope="module")
def domain_rows(tmp_path_factory: pytest.TempPathFactory, seed_settings: Any) -> list[dict]:
    from evals.domains import corpus_documents, load_domain_questions
    from evals.fresh import build_stack

    stack = build_stack(tmp_path_factory.mktemp("domains") / "store", corpus_documents(),
                        with_llm=False, settings=seed_settings)
    return run_in_process(load_domain_questions(),
                          lambda q, h: stack.engine.ask(q, history=h).to_dict(), stack.texts,
                          progress=False)


def test_domain_sets_extractive_floors(domain_rows: list[dict]) -> None:
    summary = aggregate(domain_rows)
    m = summary["metrics"]
    assert summary["n_errors"] == 0 and len(summary["by_set"]) >= 4
    assert m["quote_valid"] == 1.0
    assert m["answer_correct"] >= DOMAIN_FLOORS["answer_correct"]
    assert m["right_and_cited"] >= DOMAIN_FLOORS["right_and_cited"]
    assert m["refusal_correct"] >= DOMAIN_FLOORS["refusal_correct"]
    assert m["false_refusal"] <= DOMAIN_CEILINGS["false_refusal"]
    assert m["confidently_wrong"] <= DOMAIN_CEILINGS["confidently_wrong"]


def test_claim_benchmark_floors(seed_settings: Any) -> None:
    from app.wiring import build_embedder
    from evals import claims as cb
    from evals.checkers import verifier_checker
    from evals.domains import corpus_documents
    from ingest.chunking import chunk_document

    docs = {d.source: d for d in corpus_documents()}
    rows = cb.run(cb.load_claims(), docs, verifier_checker(build_embedder(seed_settings)),
                  chunk_document, progress=False)
    s = cb.summarise(rows)
    assert s["errors"] == 0
    for name, floor in CLAIM_FLOORS.items():
        assert s[name] >= floor, (name, s[name])


def test_xquad_answers_subset_floors(tmp_path: Path, seed_settings: Any) -> None:
    from evals import xquad_answers as xa
    from evals.fresh import build_stack

    summary, rows = xa.run(
        XQUAD / "xquad.de.dev.json", XQUAD / "xquad.en.dev.json",
        lambda docs: build_stack(tmp_path / "store", docs, with_llm=False, settings=seed_settings),
        modes=("extractive",), limit=40, seed=13, unanswerable_split=True, progress=False)
    assert len(rows) == 40 * 2 * 2
    for key, floors in XQUAD_FLOORS.items():
        for name, floor in floors.items():
            value = summary[key][name]
            assert (value <= floor) if name == "false_refusal" else \
                value >= floor, (key, name, value)
