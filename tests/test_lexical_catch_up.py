"""The BM25 index follows other writers by the documents they changed (the store's change
log), and rebuilds from all chunks only when the log cannot vouch for the result."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ingest.documents import Document
from store.collection import ChunkStore
from store.lexical import LexicalIndex
from store.retrieval import HybridRetriever

QUERIES = ["Panzer Lieferung Russland", "Soldaten gefallen Krieg", "Reis Öl Lieferungen",
           "Granaten Raketen", "nothing matches zzz"]


def doc(name: str, body: str) -> Document:
    return Document(source=name, text=body)


def docs() -> list[Document]:
    return [doc("a.txt", "Russland lieferte Öl und Reis.\n\nDie Lieferung kam im Mai an."),
            doc("b.txt", "Nordkorea schickte Granaten und Raketen.\n\nSoldaten kämpfen im Krieg."),
            doc("c.txt", "Rund 2000 Soldaten sind gefallen.\n\nDer Krieg dauert an.")]


class Spy:
    """Counts how often the reader's store reads all chunks (a rebuild)."""

    def __init__(self, store: ChunkStore) -> None:
        self.rebuilds = 0
        real = store.all_chunks

        def all_chunks() -> Any:
            self.rebuilds += 1
            return real()

        store.all_chunks = all_chunks  # type: ignore[method-assign]


@pytest.fixture
def stores(tmp_path: Path, fake_embedder: Any, fake_library: Any) -> tuple[Any, Any]:
    """A writer (a Library) and a reader's retriever on their own ChunkStore objects over the
    same Chroma, as two replicas; the reader keeps its index under ``tmp_path/lexical``."""
    for d in docs():
        fake_library.add_document(d)
    client = fake_library.store.client
    reader = ChunkStore(client, "test", fake_embedder.name, fake_embedder.dim)
    retriever = HybridRetriever(reader, fake_embedder, index_dir=tmp_path / "lexical")
    retriever.lexical()
    return fake_library, retriever


def assert_same_as_rebuilt(retriever: HybridRetriever) -> None:
    lex = retriever.lexical()
    fresh = LexicalIndex(retriever.store.all_chunks())
    assert sorted(c.id for c in lex.chunks) == sorted(c.id for c in fresh.chunks)
    pos = [lex.position[c.id] for c in fresh.chunks]
    for q in QUERIES:
        np.testing.assert_allclose(lex.scores(q)[pos], fresh.scores(q), rtol=1e-5, atol=1e-6)
        assert lex.coverage(q) == pytest.approx(fresh.coverage(q))


def test_other_writers_changes_are_caught_up_without_a_rebuild(stores: tuple[Any, Any]) -> None:
    library, retriever = stores
    spy = Spy(retriever.store)
    library.add_document(doc("d.txt", "Panzer kamen aus Russland.\n\nDie Lieferung war groß."))
    library.add_document(doc("a.txt", "Russland lieferte nur Öl.\n\nReis kam nicht."))  # replaced
    library.remove("c.txt")
    hits = retriever.search("Panzer Russland", k=3)
    assert hits and hits[0].chunk.source == "d.txt"
    assert spy.rebuilds == 0
    assert not any(h.chunk.source == "c.txt" for h in retriever.search("Soldaten gefallen", k=5))
    assert "2000" not in " ".join(c.text for c in retriever.lexical().chunks)
    spy.rebuilds = 0
    assert_same_as_rebuilt(retriever)


def test_a_restarted_reader_catches_up_from_its_saved_index(stores: tuple[Any, Any],
                                                            tmp_path: Path,
                                                            fake_embedder: Any) -> None:
    library, retriever = stores
    library.add_document(doc("d.txt", "Panzer kamen aus Russland."))
    again = HybridRetriever(ChunkStore(retriever.store.client, "test", fake_embedder.name,
                                       fake_embedder.dim), fake_embedder,
                            index_dir=tmp_path / "lexical")
    spy = Spy(again.store)
    assert again.search("Panzer", k=1)[0].chunk.source == "d.txt"
    assert spy.rebuilds == 0
    assert_same_as_rebuilt(again)


def test_many_writes_merge_segments_and_stay_equal(stores: tuple[Any, Any]) -> None:
    library, retriever = stores
    for i in range(30):  # each write is followed by a question, so each is caught up alone
        library.add_document(doc(f"n{i % 7}.txt", f"Bericht {i} über Panzer und Soldaten {i}."))
        if i % 5 == 0:
            library.remove(f"n{(i + 3) % 7}.txt")
        retriever.search("Panzer Soldaten", k=3)
    assert len(retriever.lexical()._bm25.segments) < 10
    assert_same_as_rebuilt(retriever)


def test_a_fork_in_the_log_rebuilds(stores: tuple[Any, Any]) -> None:
    """Two writers that started from the same version: one of their writes would be hidden,
    so the reader does not trust the log."""
    library, retriever = stores
    store = library.store
    before = store._state()
    library.add_document(doc("d.txt", "Panzer kamen aus Russland."))
    store._changes.add(ids=["f" * 32], embeddings=[[1.0]], metadatas=[
        {"generation": int(before["generation"]) + 1, "prev": before["version"],
         "source": "ghost.txt"}])
    spy = Spy(retriever.store)
    assert retriever.search("Panzer", k=1)[0].chunk.source == "d.txt"
    assert spy.rebuilds == 1


def test_a_pruned_log_rebuilds(stores: tuple[Any, Any]) -> None:
    library, retriever = stores
    library.add_document(doc("d.txt", "Panzer kamen aus Russland."))
    library.store._changes.delete(ids=library.store._changes.get()["ids"])
    spy = Spy(retriever.store)
    assert retriever.search("Panzer", k=1)[0].chunk.source == "d.txt"
    assert spy.rebuilds == 1


def test_a_count_that_does_not_match_rebuilds(stores: tuple[Any, Any]) -> None:
    """A chunk written without a log entry (a writer that died between its writes, or a
    store edited by hand) shows in the count the version carries."""
    library, retriever = stores
    library.add_document(doc("d.txt", "Panzer kamen aus Russland."))
    store = library.store
    got = store._chunks.get(where={"source": "b.txt"}, include=[])
    store._chunks.delete(ids=got["ids"][:1])  # behind the log's back
    library.add_document(doc("e.txt", "Noch ein Bericht."))
    spy = Spy(retriever.store)
    retriever.search("Panzer", k=1)
    assert spy.rebuilds == 1
    assert_same_as_rebuilt(retriever)


def test_the_change_log_names_the_documents_written(fake_library: Any) -> None:
    store = fake_library.store
    v0 = store.version()
    for d in docs():
        fake_library.add_document(d)
    fake_library.remove("b.txt")
    assert store.changes_since(v0, store.version()) == ["a.txt", "b.txt", "c.txt", "b.txt"]
    assert store.changes_since(store.version(), store.version()) == []
    assert store.changes_since("3:12", store.version()) is None  # a store from before the log


def test_reads_that_grow_with_the_store_go_in_pages(stores: tuple[Any, Any],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Chroma fails a read of more than 32,766 rows; with pages of 1 row every read still
    returns everything (and the index rebuilt from them is the same)."""
    import store.chroma_reads as chroma_reads

    library, retriever = stores
    whole = sorted(c.id for c in library.store.all_chunks())
    sentences = library.store.sentence_vectors(whole)
    monkeypatch.setattr(chroma_reads, "PAGE", 1)
    store = library.store
    limits: list[Any] = []
    real_get = store._chunks.get
    monkeypatch.setattr(store._chunks, "get",
                        lambda **kw: limits.append(kw.get("limit")) or real_get(**kw))
    assert sorted(c.id for c in store.all_chunks()) == whole and len(whole) > 2
    assert limits == [1] * (len(whole) + 1)  # one row per read, and the empty page that ends it
    assert [d.source for d in store.documents()] == ["a.txt", "b.txt", "c.txt"]
    assert store.sentence_vectors(whole).keys() == sentences.keys()
    assert sorted(c.id for c in store.chunks_of(["a.txt", "b.txt", "c.txt"])) == whole
    library.add_document(doc("d.txt", "Panzer kamen aus Russland.\n\nDie Lieferung war groß."))
    assert retriever.search("Panzer", k=1)[0].chunk.source == "d.txt"
    assert_same_as_rebuilt(retriever)
