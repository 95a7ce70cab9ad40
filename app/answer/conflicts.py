"""Conflicts: plausible evidence from different documents that states different figures."""
from __future__ import annotations

from dataclasses import dataclass

from app.answer.evidence import Evidence
from app.answer.selection import Selection
from app.answer.short_answer import ShortAnswer, typed_answer
from app.citations import Sentence
from app.figures import extract_figures, figures_match
from store.lexical import normalize


@dataclass(frozen=True)
class Conflict:
    """Two or more sentences, each from another document, whose short answers disagree."""

    sentences: list[Sentence]
    answers: list[ShortAnswer]


def _same(a: ShortAnswer, b: ShortAnswer) -> bool:
    fa, fb = extract_figures(a.text), extract_figures(b.text)
    if fa and fb:
        return any(figures_match(x, y) for x in fa for y in fb)
    return normalize(a.text) == normalize(b.text)


def find_conflict(ev: Evidence, selection: Selection, floor: float) -> Conflict | None:
    """Among candidates at least as likely as ``floor`` (the calibrated candidate threshold),
    the best one per document; a conflict when their typed short answers differ."""
    if selection.best is None:
        return None
    per_doc: dict[str, tuple[Sentence, ShortAnswer]] = {}
    for c, p in zip(selection.ranked, selection.probabilities):
        if not p >= floor:  # NaN (no calibration) never counts
            break
        if c.sentence.source in per_doc:
            continue
        short = typed_answer(ev, c)
        if short is None:
            continue
        per_doc[c.sentence.source] = (c.sentence, short)
    if len(per_doc) < 2:
        return None
    items = list(per_doc.values())
    first = items[0][1]
    if all(_same(first, other) for _, other in items[1:]):
        return None
    return Conflict([s for s, _ in items], [a for _, a in items])
