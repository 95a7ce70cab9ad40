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

from app.answer.features import FEATURES

logger = logging.getLogger(__name__)

CALIBRATION_DIR = Path(__file__).parent / "calibrations"
FORMAT_VERSION = 1
# The promise of the 'answered' kind: at most this share of answered answers is wrong.
DEFAULT_RISK = 0.02
RISK_LEVELS = (0.02, 0.05, 0.10, 0.20)


class CalibrationError(ValueError):
    """A calibration file is unreadable, of another format, or for other features."""


@dataclass(frozen=True)
class Calibration:
    """A logistic model over FEATURES and the thresholds of the three answer kinds.

    ``p = sigmoid(((x - mean) / scale) @ weights)`` estimates the chance that a candidate
    sentence holds the answer. The best candidate's p decides the kind: ``answered`` at or
    above ``answer_threshold``, ``candidates`` at or above ``candidate_threshold``, else
    ``refused``. ``measured`` records the data and figures behind every number here.
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

    def to_json(self) -> str:
        """JSON with infinity written as null (plain JSON has no infinity)."""
        return json.dumps(_finite(asdict(self)), indent=1, ensure_ascii=False,
                          allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        if data.get("version") != FORMAT_VERSION:
            raise CalibrationError(f"calibration format {data.get('version')} is not "
                                   f"{FORMAT_VERSION}; run `beleg-eval calibrate` again")
        if tuple(data.get("features", ())) != FEATURES:
            raise CalibrationError("the calibration was fitted for other features; "
                                   "run `beleg-eval calibrate` again")
        try:
            return cls(embed_model=str(data["embed_model"]), weights=tuple(data["weights"]),
                       mean=tuple(data["mean"]), scale=tuple(data["scale"]),
                       answer_threshold=_threshold(data["answer_threshold"]),
                       candidate_threshold=float(data["candidate_threshold"]),
                       measured=dict(data.get("measured", {})),
                       answer_thresholds={str(k): _threshold(v) for k, v in
                                          dict(data.get("answer_thresholds", {})).items()})
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
