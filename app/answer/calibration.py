"""Calibration files: the selection weights and answer-kind thresholds fitted for one embedding model."""
from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.answer.features import CONFIDENCE_FEATURES, FEATURES, confidence_features

logger = logging.getLogger(__name__)

CALIBRATION_DIR = Path(__file__).parent / "calibrations"
# 2 added the question-level confidence model (1 ranked and decided by the best p alone).
FORMAT_VERSION = 2
# The promise of the 'answered' kind: at most this share of answered answers is wrong.
DEFAULT_RISK = 0.02
RISK_LEVELS = (0.02, 0.05, 0.10, 0.20)


class CalibrationError(ValueError):
    """A calibration file is unreadable, of another format, or for other features."""


@dataclass(frozen=True)
class Calibration:
    """Two logistic models and the thresholds of the three answer kinds.

    Selection: ``p = sigmoid(((x - mean) / scale) @ weights)`` over FEATURES estimates the
    chance that a candidate sentence holds the answer; it ranks the candidates.
    Confidence: a second model over CONFIDENCE_FEATURES (the question's candidates seen
    together: the best p, the runner-up, the best's share, ...) estimates the chance that the
    best candidate answers the question. It decides the kind: ``answered`` at or above
    ``answer_threshold``, ``candidates`` at or above ``candidate_threshold``, else
    ``refused``. Without confidence weights the best p itself is the confidence.
    ``sentence_floor`` is the p a sentence needs to count as plausible evidence (conflicts).
    ``measured`` records the data and figures behind every number here.
    """

    embed_model: str
    weights: tuple[float, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    answer_threshold: float
    candidate_threshold: float
    features: tuple[str, ...] = FEATURES
    version: int = FORMAT_VERSION
    measured: dict[str, Any] = field(default_factory=dict)
    # Risk level (share of answered answers allowed to be wrong) -> the threshold that met it
    # on dev data; ``answer_threshold`` is the one for DEFAULT_RISK. Infinity: never reached.
    answer_thresholds: dict[str, float] = field(default_factory=dict)
    confidence_weights: tuple[float, ...] = ()
    confidence_mean: tuple[float, ...] = ()
    confidence_scale: tuple[float, ...] = ()
    confidence_features: tuple[str, ...] = CONFIDENCE_FEATURES
    sentence_floor: float | None = None  # None: the candidate threshold

    def threshold_for(self, risk: float | None) -> float:
        """The answer threshold of the largest calibrated risk level not above ``risk``."""
        if risk is None:
            return self.answer_threshold
        levels = [(float(k), v) for k, v in self.answer_thresholds.items() if float(k) <= risk]
        if not levels:
            return float("inf")
        return min(v for _, v in levels)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        if not len(x):
            return np.zeros(0)
        z = ((x - np.asarray(self.mean)) / np.asarray(self.scale)) @ np.asarray(self.weights)
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))

    def confidence(self, x: np.ndarray, p: np.ndarray) -> float:
        """The chance that the best of these candidates answers the question."""
        if not len(p):
            return 0.0
        if not self.confidence_weights:
            return float(p.max())
        q = confidence_features(x, p)
        z = float(((q - np.asarray(self.confidence_mean)) / np.asarray(self.confidence_scale))
                  @ np.asarray(self.confidence_weights))
        return 1.0 / (1.0 + math.exp(-min(max(z, -40.0), 40.0)))

    @property
    def evidence_floor(self) -> float:
        return self.candidate_threshold if self.sentence_floor is None else self.sentence_floor

    def to_json(self) -> str:
        """JSON with infinity written as null (plain JSON has no infinity)."""
        return json.dumps(_finite(asdict(self)), indent=1, ensure_ascii=False,
                          allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        if data.get("version") not in (1, FORMAT_VERSION):
            raise CalibrationError(f"calibration format {data.get('version')} is not "
                                   f"{FORMAT_VERSION}; run `beleg-eval calibrate` again")
        if tuple(data.get("features", ())) != FEATURES:
            raise CalibrationError("the calibration was fitted for other features; "
                                   "run `beleg-eval calibrate` again")
        if data.get("confidence_weights") and \
                tuple(data.get("confidence_features", ())) != CONFIDENCE_FEATURES:
            raise CalibrationError("the calibration's confidence model has other features; "
                                   "run `beleg-eval calibrate` again")
        try:
            floor = data.get("sentence_floor")
            return cls(embed_model=str(data["embed_model"]), weights=tuple(data["weights"]),
                       mean=tuple(data["mean"]), scale=tuple(data["scale"]),
                       answer_threshold=_threshold(data["answer_threshold"]),
                       candidate_threshold=float(data["candidate_threshold"]),
                       measured=dict(data.get("measured", {})),
                       answer_thresholds={str(k): _threshold(v) for k, v in
                                          dict(data.get("answer_thresholds", {})).items()},
                       confidence_weights=tuple(data.get("confidence_weights") or ()),
                       confidence_mean=tuple(data.get("confidence_mean") or ()),
                       confidence_scale=tuple(data.get("confidence_scale") or ()),
                       sentence_floor=None if floor is None else float(floor))
        except (KeyError, TypeError, ValueError) as exc:
            raise CalibrationError(f"the calibration file is incomplete: {exc}") from exc


def _finite(value: Any) -> Any:
    """The value with every infinite or NaN float (in nested dicts and lists) made None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _threshold(value: Any) -> float:
    return float("inf") if value is None else float(value)


def calibration_path(embed_model: str, directory: Path = CALIBRATION_DIR) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", embed_model.rsplit("/", 1)[-1]).strip("._") or "model"
    return directory / f"{slug}.json"


def load_calibration(embed_model: str, directory: Path = CALIBRATION_DIR) -> Calibration | None:
    """The calibration shipped for ``embed_model``, or None (logged) when there is none."""
    path = calibration_path(embed_model, directory)
    if not path.exists():
        logger.warning("no answer calibration for the embedding model '%s' (%s): answers fall "
                       "back to plain similarity ranking and are never marked 'answered'. Run "
                       "`beleg-eval calibrate` to fit one.", embed_model, path)
        return None
    try:
        cal = Calibration.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        logger.warning("ignoring the calibration %s: %s", path, exc)
        return None
    if cal.embed_model != embed_model:
        logger.warning("the calibration %s is for '%s', not '%s': ignored", path,
                       cal.embed_model, embed_model)
        return None
    return cal
