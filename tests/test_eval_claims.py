"""The claim benchmark's runner and summary, with a checker passed in (tests/fakes.py style)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.claims import Checked, Claim, ClaimFileError, load_claims, run, summarise
from ingest.chunking import chunk_document
from ingest.documents import Chunk, Document

TEXT = ("Nordkorea lieferte Granaten im Wert von 5,6 Milliarden Dollar an Russland. "
        "Russland gab dafür 1,2 Milliarden Dollar zurück.")
DOCS = {"a.txt": Document("a.txt", TEXT)}
SPAN = "Nordkorea lieferte Granaten im Wert von 5,6 Milliarden Dollar an Russland."


def claim(cid: str, label: str, kind: str) -> Claim:
    return Claim(cid, "x " + cid, "de", "a.txt", SPAN, label, kind)


def accept_supported(text: str, chunks: list[Chunk]) -> Checked:
    """A checker that is right about everything but neighbour figures."""
    assert chunks and chunks[0].source == "a.txt"
    ok = text.startswith("x s") or text.endswith("nb")
    return Checked(ok, ("a.txt", 0, 10) if ok else None, "" if ok else "rejected")


def test_scores_a_supported_and_an_unsupported_claim() -> None:
    claims = [claim("s1", "supported", "none"), claim("u-role", "unsupported", "role_swap"),
              claim("u-nb", "unsupported", "neighbour_figure")]
    rows = run(claims, DOCS, accept_supported, chunk_document, progress=False)
    by_id = {r["id"]: r for r in rows}
    assert by_id["s1"]["passed"] and by_id["s1"]["cited_span"]
    assert by_id["u-role"]["passed"] and not by_id["u-nb"]["passed"]
    assert by_id["u-nb"]["failures"] == ["accepted an unsupported claim"]
    s = summarise(rows)
    assert s["supported_recall"] == 1.0 and s["unsupported_recall"] == 0.5
    assert s["balanced_accuracy"] == pytest.approx(0.75)
    assert s["supported_precision"] == pytest.approx(0.5)
    assert s["unsupported_recall_by_type"]["neighbour_figure"]["recall"] == 0.0
    assert s["unsupported_recall_by_type"]["role_swap"]["recall"] == 1.0


def test_a_crashing_checker_is_a_scored_error() -> None:
    def boom(text: str, chunks: list[Chunk]) -> Checked:
        raise RuntimeError("down")

    rows = run([claim("s1", "supported", "none")], DOCS, boom, chunk_document, progress=False)
    assert rows[0]["error"] == "RuntimeError: down" and rows[0]["failures"] == ["error"]


def test_claim_file_is_validated(tmp_path: Path) -> None:
    bad = tmp_path / "c.jsonl"
    row = {"id": "c1", "claim": "c", "language": "de", "source": "a.txt", "span": SPAN,
           "label": "supported", "perturbation": "wrong_number"}
    bad.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(ClaimFileError, match="only unperturbed"):
        load_claims(bad)


def test_splits_are_by_source_document_and_cover_the_claim_file() -> None:
    from evals.claims import SPLITS, select_split, split_of

    claims = load_claims()
    dev, held = select_split(claims, "dev"), select_split(claims, "held-out")
    assert len(dev) + len(held) == len(claims) == len(select_split(claims, "all"))
    assert not {c.source for c in dev} & {c.source for c in held}
    assert {split_of(c) for c in claims} == set(SPLITS)
    with pytest.raises(ValueError, match="unknown split"):
        select_split(claims, "test")


def test_summaries_per_split() -> None:
    from evals.claims import summarise_splits

    rows = run([claim("s1", "supported", "none")], DOCS, accept_supported, chunk_document, progress=False)
    assert rows[0]["split"] is None and summarise_splits(rows) == {}
    rows[0]["split"] = "dev"
    assert summarise_splits(rows)["dev"]["n"] == 1
