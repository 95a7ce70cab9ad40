"""The collections of one beleg (named document spaces), each opened once with its retriever."""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from store.collection import ChunkStore, UnknownCollection
from store.embedding import Embedder
from store.naming import DEFAULT_COLLECTION, checked_collection, chroma_name, collection_names
from store.retrieval import HybridRetriever

logger = logging.getLogger(__name__)


class Collections:
    """Every collection under one Chroma base name: the default one (always there) and the
    named ones (created by their first ingest). A collection's chunks, sentences, documents and
    lexical index are its own; nothing one holds can be retrieved through another."""

    def __init__(self, client: Any, base: str, embedder: Embedder,
                 lexical_root: Path | None = None,
                 default: HybridRetriever | None = None) -> None:
        self.client = client
        self.base = base
        self.embedder = embedder
        self.lexical_root = lexical_root
        self._lock = threading.Lock()
        self._open: dict[str, HybridRetriever] = {}
        if default is not None:
            self._open[DEFAULT_COLLECTION] = default

    @classmethod
    def single(cls, retriever: HybridRetriever) -> Collections:
        """Only the given retriever, as the default collection (an engine built by hand)."""
        return _Single(retriever)

    def names(self) -> list[str]:
        """The collections that exist now (another process may have created one)."""
        return collection_names(self.client, self.base)

    def retriever(self, name: str | None = None, create: bool = False) -> HybridRetriever:
        """The retriever of a collection; UnknownCollection unless it exists or ``create``."""
        name = checked_collection(name)
        with self._lock:
            if name in self._open:
                return self._open[name]
        store = ChunkStore(self.client, chroma_name(self.base, name), self.embedder.name,
                           self.embedder.dim, create=create or name == DEFAULT_COLLECTION,
                           label=name)
        index_dir = self.lexical_root / store.name if self.lexical_root else None
        retriever = HybridRetriever(store, self.embedder, index_dir=index_dir)
        with self._lock:
            return self._open.setdefault(name, retriever)

    def store(self, name: str | None = None, create: bool = False) -> ChunkStore:
        return self.retriever(name, create).store


class _Single(Collections):
    def __init__(self, retriever: HybridRetriever) -> None:
        self.retriever_ = retriever
        self.embedder = retriever.embedder

    def names(self) -> list[str]:
        return [DEFAULT_COLLECTION]

    def retriever(self, name: str | None = None, create: bool = False) -> HybridRetriever:
        if checked_collection(name) != DEFAULT_COLLECTION:
            raise UnknownCollection(f"there is no collection named '{name}'; this server "
                                    "holds only the default collection")
        return self.retriever_
