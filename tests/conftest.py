"""Shared fixtures: a deterministic fake embedder, and a real seed store built once per session."""
from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "corpus" / "000_218c33ea26fbfb53.txt"


class HashEmbedder:
    """Bag of hashed lower-case words: same words -> same vector. Deterministic and instant."""

    dim = 64

    def __init__(self, name: str = "fake-hash") -> None:
        self.name = name

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dim] += 1.0
            out[i, 0] += 1e-3
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts)


@pytest.fixture
def fake_embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture
def fake_library(tmp_path: Path, fake_embedder: HashEmbedder):  # type: ignore[no-untyped-def]
    """A Library on a fresh embedded Chroma with the fake embedder."""
    from app.library import Library
    from store.collection import ChunkStore, connect

    store = ChunkStore(connect(path=tmp_path / "chroma"), "test", fake_embedder.name,
                       fake_embedder.dim)
    return Library(store, fake_embedder)


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Settings for a store under a session temp dir holding the seed article (real e5 model)."""
    from app.settings import Settings
    from app.wiring import build_library

    data = tmp_path_factory.mktemp("seed-data")
    settings = Settings.load(env={}, data_dir=data, llm="extractive")
    build_library(settings=settings).add_paths([SEED])
    return settings


@pytest.fixture(scope="session")
def seed_engine(seed_settings):  # type: ignore[no-untyped-def]
    """The extractive answer engine over the seed article."""
    from app.wiring import build_engine

    return build_engine(seed_settings)


@pytest.fixture(scope="session")
def seed_text() -> str:
    from ingest.loaders import load_document

    return load_document(SEED).text


@pytest.fixture(scope="session")
def answering_selector(seed_engine):  # type: ignore[no-untyped-def]
    """The shipped calibration's ranking and refusals, with the answer threshold lowered to the
    candidate threshold: every question it does not refuse is 'answered', so tests reach the
    model's statement step."""
    from dataclasses import replace

    from app.answer.selection import Selector

    cal = seed_engine.selector.calibration
    assert cal is not None, "the shipped calibration for multilingual-e5-small is missing"
    return Selector(replace(cal, answer_threshold=cal.candidate_threshold))


class EndlessLLM:
    """A streaming backend that writes a word every 10 ms until told to stop (its on_token
    callback returns True) or until ``limit_s`` passes; records how it ended."""

    name = "openai"
    model = "endless"

    def __init__(self, limit_s: float = 60.0) -> None:
        import threading

        self.limit_s = limit_s
        self.started = threading.Event()
        self.stopped = threading.Event()  # the caller asked it to stop
        self.words = 0
        self.running = 0  # generations under way now, and the most at once
        self.peak = 0
        self._lock = threading.Lock()

    def chat(self, messages: list[dict[str, str]], *, on_token=None, **kwargs):  # type: ignore[no-untyped-def]
        import time
        from types import SimpleNamespace

        if on_token is None:  # the grammar-constrained copy: answer at once, with nothing
            return SimpleNamespace(text="")
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        self.started.set()
        end = time.monotonic() + self.limit_s
        try:
            while time.monotonic() < end:
                self.words += 1
                if on_token("Wort "):
                    self.stopped.set()
                    break
                time.sleep(0.01)
        finally:
            with self._lock:
                self.running -= 1
        return SimpleNamespace(text="")

    def health(self) -> dict[str, object]:
        return {"backend": "openai", "model": "endless", "ok": True, "detail": "fake"}
