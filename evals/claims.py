"""Claim benchmark: does the answer layer's claim check accept faithful claims and reject altered ones?

Each triple is (claim, source span, label). The check sees what it would see in a real answer:
the chunks of the span's document that contain the span, so a figure borrowed from a neighbouring
sentence is within its reach. A claim counts as accepted when the check would show it.
"""
from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.documents import Chunk, Document

logger = logging.getLogger(__name__)

DEFAULT_CLAIMS = Path(__file__).resolve().parent / "data" / "claims.jsonl"
LABELS = ("supported", "unsupported")
# Dev/held-out split by source document, defined here only: checks are designed and tuned on the
# dev documents; the held-out documents measure the result on text nobody tuned on.
SPLITS: dict[str, frozenset[str]] = {
    "dev": frozenset({"000_218c33ea26fbfb53.txt", "service-contract.txt", "heatpump-manual.txt"}),
    "held-out": frozenset({"annual-report.txt", "travel-policy.txt"}),
}
SPLIT_NAMES = ("dev", "held-out", "all")
PERTURBATIONS = ("none", "role_swap", "wrong_entity", "wrong_number", "wrong_unit", "wrong_year",
                 "polarity", "neighbour_figure", "invented")


class ClaimFileError(ValueError):
    """The claim file cannot be used; the message names the line and the field."""


@dataclass(frozen=True)
class Claim:
    id: str
    claim: str
    language: str
    source: str
    span: str
    label: str
    perturbation: str


@dataclass(frozen=True)
class Checked:
    """What the check decided about one claim, and the span it cited when it accepted."""

    accepted: bool
    cited: tuple[str, int, int] | None = None
    problem: str = ""


# (claim, context chunks) -> decision; the adapter to the answer layer lives in evals.cli
Checker = Callable[[str, list[Chunk]], Checked]


def load_claims(path: Path = DEFAULT_CLAIMS) -> list[Claim]:
    """Read and validate the claim file."""
    claims: list[Claim] = []
    seen: set[str] = set()
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
            claim = Claim(**{k: row[k] for k in Claim.__dataclass_fields__})
        except (ValueError, KeyError, TypeError) as exc:
            raise ClaimFileError(f"{where}: {exc}") from exc
        if claim.label not in LABELS or claim.perturbation not in PERTURBATIONS:
            raise ClaimFileError(f"{where}: bad label or perturbation")
        if (claim.label == "supported") != (claim.perturbation == "none"):
            raise ClaimFileError(f"{where}: only unperturbed claims are supported")
        if claim.id in seen:
            raise ClaimFileError(f"{where}: duplicate id {claim.id!r}")
        seen.add(claim.id)
        claims.append(claim)
    return claims


def split_of(claim: Claim) -> str:
    """The split a claim belongs to ("dev" or "held-out"), by its source document."""
    for name, sources in SPLITS.items():
        if claim.source in sources:
            return name
    raise ClaimFileError(f"{claim.id}: source {claim.source!r} is in no split")


def select_split(claims: list[Claim], split: str) -> list[Claim]:
    """The claims of one split; "all" keeps every claim."""
    if split not in SPLIT_NAMES:
        raise ValueError(f"unknown split {split!r} (choose from {', '.join(SPLIT_NAMES)})")
    return claims if split == "all" else [c for c in claims if split_of(c) == split]


def context_for(claim: Claim, documents: dict[str, Document],
                chunker: Callable[[Document], list[Chunk]]) -> tuple[list[Chunk], int, int]:
    """The chunks that hold the claim's span, and the span's offsets in its document."""
    doc = documents.get(claim.source)
    if doc is None:
        raise ClaimFileError(f"{claim.id}: unknown source {claim.source!r}")
    start = doc.text.find(claim.span)
    if start < 0:
        raise ClaimFileError(f"{claim.id}: the span is not in {claim.source}")
    end = start + len(claim.span)
    chunks = [c for c in chunker(doc) if c.start < end and start < c.end]
    return chunks, start, end


def run(claims: list[Claim], documents: dict[str, Document], check: Checker,
        chunker: Callable[[Document], list[Chunk]], progress: bool = True) -> list[dict[str, Any]]:
    """Check every claim; returns one scored row per claim."""
    from tqdm import tqdm

    rows = []
    for c in tqdm(claims, desc="claims", unit="claim", disable=not progress):
        chunks, start, end = context_for(c, documents, chunker)
        try:
            verdict, error = check(c.claim, chunks), None
        except Exception as exc:  # noqa: BLE001 - a crash is a scored error, not the end
            verdict, error = Checked(False, problem="error"), f"{type(exc).__name__}: {exc}"
        on_span = verdict.cited is not None and verdict.cited[0] == c.source \
            and verdict.cited[1] < end and start < verdict.cited[2]
        correct = verdict.accepted == (c.label == "supported") and error is None
        rows.append({"id": c.id, "user_input": c.claim, "claim": c.claim, "language": c.language,
                     "source": c.source, "split": _split_or_none(c), "reference": c.span, "label": c.label,
                     "perturbation": c.perturbation, "accepted": verdict.accepted,
                     "cited_span": on_span, "problem": verdict.problem, "error": error,
                     "passed": correct,
                     "failures": [] if correct else [
                         "error" if error else "accepted an unsupported claim"
                         if c.label == "unsupported" else "rejected a supported claim"]})
    return rows


def _split_or_none(claim: Claim) -> str | None:
    try:
        return split_of(claim)
    except ClaimFileError:
        return None


def summarise_splits(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One summary per split present in the rows (rows of no split are left out)."""
    out: dict[str, dict[str, Any]] = {}
    for name in SPLITS:
        part = [r for r in rows if r.get("split") == name]
        if part:
            out[name] = summarise(part)
    return out


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Balanced accuracy, precision and recall of supported claims, recall per perturbation."""
    sup = [r for r in rows if r["label"] == "supported"]
    uns = [r for r in rows if r["label"] == "unsupported"]
    accepted = [r for r in rows if r["accepted"]]
    sup_recall = _ratio(sum(r["accepted"] for r in sup), len(sup))
    uns_recall = _ratio(sum(not r["accepted"] for r in uns), len(uns))
    per_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    per_lang: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in uns:
        per_type[r["perturbation"]].append(r)
    for r in rows:
        per_lang[r["language"]].append(r)
    return {
        "n": len(rows), "n_supported": len(sup), "n_unsupported": len(uns),
        "errors": sum(1 for r in rows if r["error"]),
        "balanced_accuracy": None if sup_recall is None or uns_recall is None
        else (sup_recall + uns_recall) / 2,
        "supported_precision": _ratio(sum(r["label"] == "supported" for r in accepted),
                                      len(accepted)),
        "supported_recall": sup_recall,
        "unsupported_recall": uns_recall,
        "supported_cited_on_span": _ratio(sum(r["cited_span"] for r in sup if r["accepted"]),
                                          sum(r["accepted"] for r in sup)),
        "unsupported_recall_by_type": {t: {"n": len(v), "recall": _ratio(
            sum(not r["accepted"] for r in v), len(v))} for t, v in sorted(per_type.items())},
        "accuracy_by_language": {k: {"n": len(v), "accuracy": _ratio(
            sum(r["passed"] for r in v), len(v))} for k, v in sorted(per_lang.items())},
    }


def chart_metrics(summary: dict[str, Any]) -> dict[str, float | None]:
    chart = {k: summary[k] for k in ("balanced_accuracy", "supported_precision",
                                     "supported_recall", "unsupported_recall")}
    chart.update({f"rejects {t}": v["recall"]
                  for t, v in summary["unsupported_recall_by_type"].items()})
    return chart
