"""Adapters from the eval suite to the answer layer's own checks (the code being evaluated)."""
from __future__ import annotations

from typing import Any

from evals.claims import Checked, Checker
from ingest.documents import Chunk


def verifier_checker(embedder: Any) -> Checker:
    """The claim check generated sentences pass through before anyone sees them."""
    from app.answer.term_support import TermSupport
    from app.answer.verification import Verifier
    from app.citations import Source

    support = TermSupport(embedder)

    def check(claim: str, chunks: list[Chunk]) -> Checked:
        sources = [Source(i + 1, c, 1.0) for i, c in enumerate(chunks)]
        verdict = Verifier(embedder, sources, support=support).check(claim)
        if verdict.shown and verdict.citation is not None:
            c = verdict.citation
            return Checked(True, (c.source, c.start, c.end), "")
        return Checked(False, None, verdict.problem)

    return check
