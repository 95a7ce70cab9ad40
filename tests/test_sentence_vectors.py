"""Sentence vectors: stored with their chunks, replaced and removed with them, used by dense search."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ingest.documents import Document
from store.retrieval import HybridRetriever

LONG = ("Der Hafen von Rason liegt im Nordosten. " * 3
        + "Die Brücke über den Tumen wurde 2024 eröffnet. "
        + "Fischerei prägt die Küste. " * 3)


def _sentence_count(library: Any, source: str) -> int:
    return len(library.store._sentences.get(where={"source": source}, include=[])["ids"])


def test_sentences_follow_their_document(fake_library: Any) -> None:
    doc = Document("a.txt", LONG)
    fake_library.add_document(doc)
    n = _sentence_count(fake_library, "a.txt")
    assert n == 7
    fake_library.add_document(Document("a.txt", "Nur noch ein Satz über die Brücke."))
    assert _sentence_count(fake_library, "a.txt") == 1
    assert fake_library.remove("a.txt")
    assert _sentence_count(fake_library, "a.txt") == 0


def test_best_sentence_lifts_its_chunk(fake_library: Any, fake_embedder: Any) -> None:
    fake_library.add_document(Document("a.txt", LONG))
    fake_library.add_document(Document("b.txt", "Die Brücke über den Fluss ist alt und grau."))
    store = fake_library.store
    query = "Tumen Brücke eröffnet 2024"
    vec = fake_embedder.embed_queries([query])[0]
    hits: dict[str, float] = {}
    for chunk_id, _start, cos, stored in store.query_sentence_vectors(vec, 10):
        hits[chunk_id] = max(cos, hits.get(chunk_id, -1.0))
        assert stored is not None and stored.shape == vec.shape  # the vector stored at ingest
    a_chunk = store.all_chunks()[0]
    assert a_chunk.source == "a.txt"
    # the matching sentence is far closer to the query than the diluted whole chunk
    whole = {c.id: cos for c, cos in store.query(vec, 5)}
    assert hits[a_chunk.id] > whole[a_chunk.id] + 0.1
    retriever = HybridRetriever(store, fake_embedder)
    top = retriever.search(query, 2, mode="dense")
    assert top[0].chunk.source == "a.txt"
    assert np.isfinite(top[0].dense)


def test_store_without_sentences_still_searches(fake_library: Any, fake_embedder: Any,
                                               tmp_path: Path) -> None:
    doc = Document("c.txt", "Kim trifft Putin im Sommer.")
    from ingest.chunking import chunk_document

    chunks = chunk_document(doc)
    fake_library.store.put(doc, chunks, fake_embedder.embed_passages([c.text for c in chunks]))
    hits = HybridRetriever(fake_library.store, fake_embedder).search("Kim Putin Sommer", 1)
    assert hits and hits[0].chunk.source == "c.txt"
