"""Selection: score every candidate sentence with the calibrated model and decide the answer kind."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.answer.calibration import Calibration
from app.answer.evidence import Candidate, Evidence
from app.answer.features import FEATURES, feature_matrix

ANSWERED, CANDIDATES, REFUSED = "answered", "candidates", "refused"
KINDS = (ANSWERED, CANDIDATES, REFUSED)
# How many sentences a 'candidates' answer quotes at most.
MAX_CANDIDATES = 3


@dataclass(frozen=True)
class Selection:
    """The candidates ranked best first, their probabilities, and the kind of answer they allow."""

    kind: str
    ranked: list[Candidate]
    probabilities: list[float]
    reason: str

    @property
    def best(self) -> Candidate | None:
        return self.ranked[0] if self.ranked else None

    @property
    def confidence(self) -> float:
        return self.probabilities[0] if self.probabilities else 0.0


class Selector:
    """Ranks candidates by the calibrated probability that they hold the answer.

    ``risk`` picks one of the calibration's answer thresholds (the share of answered answers
    allowed to be wrong, as measured on dev data); None keeps the default (2 %).
    Without a calibration (an embedding model nobody has fitted) it ranks by cosine and never
    claims an answer: the best sentences are offered as candidates, or refused when nothing
    is on topic (``fallback_min_cos``, None = always offer).
    """

    def __init__(self, calibration: Calibration | None, fallback_min_cos: float | None = None,
                 risk: float | None = None) -> None:
        self.calibration = calibration
        self.fallback_min_cos = fallback_min_cos
        self.answer_threshold = (float("inf") if calibration is None
                                 else calibration.threshold_for(risk))

    def select(self, ev: Evidence) -> Selection:
        if not ev.candidates:
            return Selection(REFUSED, [], [], "the sources hold no sentence")
        x = feature_matrix(ev)
        if self.calibration is None:
            scores = x[:, FEATURES.index("cos")]
            order = np.argsort(-scores, kind="stable")
            ranked = [ev.candidates[i] for i in order]
            probs = [float("nan")] * len(ranked)
            if self.fallback_min_cos is not None and scores.max() < self.fallback_min_cos:
                return Selection(REFUSED, ranked, probs, "no calibration; nothing similar enough")
            return Selection(CANDIDATES, ranked, probs, "no calibration for this embedding model")
        p = self.calibration.probabilities(x)
        order = np.argsort(-p, kind="stable")
        ranked = [ev.candidates[i] for i in order]
        probs = [float(p[i]) for i in order]
        best = probs[0]
        if best >= self.answer_threshold:
            kind = ANSWERED
        elif best >= self.calibration.candidate_threshold:
            kind = CANDIDATES
        else:
            kind = REFUSED
        return Selection(kind, ranked, probs, f"p={best:.3f}")
