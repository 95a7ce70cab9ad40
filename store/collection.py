"""Chroma storage for chunks and their documents: embedded or server, one embedding model per store."""
from __future__ import annotations

import functools
import json
import logging
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings

from ingest.documents import Chunk, Document
from store.change_log import record, sources_between
from store.chroma_reads import get_all

logger = logging.getLogger(__name__)

_STATE_ID = "__state__"
# The HNSW graph of the chunk and sentence collections (new collections; an existing one keeps
# the graph it was built with). Chroma's defaults (M 16, construction and search ef 100) found
# 41 % of the exact top 10 over 10k synthetic 384-wide vectors (bench/scale.py's); search ef
# 400: 72 %; construction ef 400 too: 87 %; and M 32: 95.5 %, at 2.4 ms per query instead of
# 1.4 ms and twice the graph build time. Real embeddings are easier for HNSW than these sums of
# random vectors, but a missed neighbour is a passage no answer can cite, so recall wins.
VECTOR_INDEX = {"hnsw:space": "cosine", "hnsw:M": 32, "hnsw:construction_ef": 400,
                "hnsw:search_ef": 400}


class StoreError(Exception):
    """The vector store cannot be used as asked."""


class EmbeddingModelMismatch(StoreError):
    """The store was built with another embedding model."""


class StoreUnavailable(StoreError):
    """The Chroma server cannot be reached."""


class UnknownCollection(StoreError):
    """A collection that was asked for by name does not exist (nothing was created)."""


@dataclass(frozen=True)
class SentenceSpan:
    """A sentence of a chunk, in document offsets."""

    chunk_id: str
    source: str
    start: int
    end: int


@dataclass(frozen=True)
class StoredDocument:
    """A document as the store knows it."""

    source: str
    hash: str
    chunks: int
    metadata: dict[str, Any]


F = TypeVar("F", bound=Callable[..., Any])


def _guarded(method: F) -> F:
    """Turns whatever Chroma raises (a dead server, a full disk, a broken file) into
    StoreUnavailable, so every edge can answer it as "the store is unavailable" (HTTP 503)
    instead of an internal error. beleg's own StoreErrors pass through unchanged."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except StoreError:
            raise
        except Exception as exc:
            logger.warning("vector store call %s failed: %s", method.__name__, exc)
            logger.debug("vector store failure", exc_info=True)
            raise StoreUnavailable(
                "the vector store is unavailable; check that the Chroma server runs "
                "(BELEG_CHROMA_URL) or that the data folder has room, then try again "
                f"({type(exc).__name__}: {str(exc)[:120]})") from exc

    return wrapper  # type: ignore[return-value]


def _client_settings() -> ChromaSettings:
    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def connect(path: Path | None = None, url: str | None = None) -> Any:
    """A Chroma client: a server at ``url`` (http://host:port) or embedded under ``path``."""
    if url:
        from urllib.parse import urlparse

        u = urlparse(url)
        try:
            client = chromadb.HttpClient(host=u.hostname or "127.0.0.1", port=u.port or 8000,
                                         ssl=u.scheme == "https", settings=_client_settings())
            client.heartbeat()
        except Exception as exc:  # chromadb raises several types for a dead server
            raise StoreUnavailable(
                f"cannot reach the Chroma server at {url} ({exc}); start it with "
                f"`chroma run --path DIR --host 127.0.0.1 --port PORT` or unset BELEG_CHROMA_URL"
            ) from exc
        return client
    if path is None:
        raise StoreError("either a data folder or a Chroma server URL is needed")
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=_client_settings())


def _listed(client: Any) -> list[Any]:
    try:
        return list(client.list_collections())
    except Exception as exc:
        raise StoreUnavailable(f"cannot list the Chroma collections: {exc}") from exc


class ChunkStore:
    """Chunks (with embeddings) and whole documents in two Chroma collections.

    The chunk collection records the embedding model that built it; using the store with
    another model raises EmbeddingModelMismatch. A generation counter changes on every write,
    so readers in other processes can tell that their derived indexes are stale.
    """

    def __init__(self, client: Any, name: str, embed_model: str, dim: int,
                 create: bool = True, label: str = "") -> None:
        """``name`` is the Chroma name of the chunk collection; ``create=False`` opens only a
        store that exists (UnknownCollection otherwise); ``label`` names it in messages."""
        if len(name) < 3:
            raise StoreError(f"collection name '{name}' is too short (Chroma needs 3+ characters)")
        self.client = client
        self.name = name
        self.label = label or name
        self.embed_model = embed_model
        self.dim = dim
        if not create and name not in {c if isinstance(c, str) else c.name
                                       for c in _listed(client)}:
            raise UnknownCollection(f"there is no collection named '{self.label}'; ingest "
                                    "documents into it first (or leave the collection out)")
        try:
            self._chunks = client.get_or_create_collection(
                name, metadata={**VECTOR_INDEX, "embed_model": embed_model, "embed_dim": dim},
                embedding_function=None)
            self._sentences = client.get_or_create_collection(
                f"{name}_sentences", metadata=VECTOR_INDEX, embedding_function=None)
            self._docs = client.get_or_create_collection(
                f"{name}_documents", metadata={"hnsw:space": "cosine"}, embedding_function=None)
            self._changes = client.get_or_create_collection(
                f"{name}_changes", metadata={"hnsw:space": "cosine"}, embedding_function=None)
        except Exception as exc:
            raise StoreUnavailable(f"cannot open the Chroma collection '{name}': {exc}") from exc
        meta = self._chunks.metadata or {}
        built_with = meta.get("embed_model")
        if built_with and built_with != embed_model:
            raise EmbeddingModelMismatch(
                f"this store was built with the embedding model '{built_with}', but the settings ask "
                f"for '{embed_model}'. Re-ingest your documents into a new data folder "
                f"(BELEG_DATA_DIR) or set BELEG_EMBEDDING back to the model that built it.")
        self._vector_store: Any = None

    @property
    def _vectors(self) -> Any:
        """llama-index's Chroma vector store over the chunks, made on first use: listing or
        removing documents (the light CLI commands) does not import llama-index."""
        if self._vector_store is None:
            from llama_index.vector_stores.chroma import ChromaVectorStore

            self._vector_store = ChromaVectorStore(chroma_collection=self._chunks)
        return self._vector_store

    # ---- documents -------------------------------------------------------------------------
    @_guarded
    def documents(self) -> list[StoredDocument]:
        got = get_all(self._docs, include=["metadatas"])
        out = []
        for doc_id, meta in zip(got["ids"], got["metadatas"]):
            if doc_id == _STATE_ID:
                continue
            extra = json.loads(meta.get("metadata_json", "{}"))
            out.append(StoredDocument(source=doc_id, hash=meta["hash"], chunks=int(meta["chunks"]),
                                      metadata=extra))
        return sorted(out, key=lambda d: d.source)

    @_guarded
    def document(self, source: str) -> Document | None:
        if source == _STATE_ID:  # the store's own record is not a document
            return None
        got = self._docs.get(ids=[source], include=["documents", "metadatas"])
        if not got["ids"]:
            return None
        meta = got["metadatas"][0]
        return Document(source=source, text=got["documents"][0],
                        metadata=json.loads(meta.get("metadata_json", "{}")))

    @_guarded
    def document_hash(self, source: str) -> str | None:
        if source == _STATE_ID:
            return None
        got = self._docs.get(ids=[source], include=["metadatas"])
        return got["metadatas"][0]["hash"] if got["ids"] else None

    # ---- writes ----------------------------------------------------------------------------
    @_guarded
    def put(self, doc: Document, chunks: Sequence[Chunk], embeddings: np.ndarray,
            sentences: Sequence[SentenceSpan] = (), sentence_embeddings: np.ndarray | None = None
            ) -> None:
        """Store a document, its chunks and (optionally) sentence vectors, replacing the old ones.

        Sentence vectors let dense retrieval score a chunk by its best sentence as well as by
        its whole text (see store/retrieval.py).
        """
        if doc.source == _STATE_ID:
            raise StoreError(f"'{_STATE_ID}' is the store's own record, not a document name")
        from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
        from llama_index.core.vector_stores.utils import node_to_metadata_dict

        if len(chunks) != len(embeddings):
            raise StoreError("one embedding per chunk is required")
        if embeddings.size and embeddings.shape[1] != self.dim:
            raise EmbeddingModelMismatch(
                f"embeddings have {embeddings.shape[1]} dimensions, the store expects {self.dim}")
        nodes = []
        for chunk, vector in zip(chunks, embeddings):
            node = TextNode(
                id_=chunk.id, text=chunk.text, embedding=[float(x) for x in vector],
                metadata={"source": chunk.source, "start": chunk.start, "end": chunk.end,
                          "doc_hash": chunk.doc_hash},
                start_char_idx=chunk.start, end_char_idx=chunk.end)
            node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=chunk.source)
            nodes.append(node)
        # New chunks first, then drop the old ones: a failure midway never leaves the source empty.
        old_ids = set(get_all(self._chunks, where={"source": doc.source}, include=[])["ids"])
        fresh = [n for n in nodes if n.node_id not in old_ids]
        kept = [n for n in nodes if n.node_id in old_ids]
        if fresh:
            self._vectors.add(fresh)
        if kept:  # same text at the same place: only the document hash changes
            self._chunks.update(ids=[n.node_id for n in kept], metadatas=[
                node_to_metadata_dict(n, remove_text=True, flat_metadata=True) for n in kept])
        stale = sorted(old_ids - {c.id for c in chunks})
        if stale:
            self._chunks.delete(ids=stale)
        self._put_sentences(doc.source, sentences, sentence_embeddings)
        self._docs.upsert(
            ids=[doc.source], documents=[doc.text], embeddings=[[1.0]],
            metadatas=[{"hash": doc.hash, "chunks": len(chunks),
                        "metadata_json": json.dumps(doc.metadata, ensure_ascii=False)}])
        self._bump(doc.source)

    @_guarded
    def remove(self, source: str) -> bool:
        """Remove a document and its chunks; False when it was not stored."""
        if source == _STATE_ID or not self._docs.get(ids=[source], include=[])["ids"]:
            return False
        self._vectors.delete(ref_doc_id=source)
        self._chunks.delete(where={"source": source})
        self._sentences.delete(where={"source": source})
        self._docs.delete(ids=[source])
        self._bump(source)
        return True

    @_guarded
    def _put_sentences(self, source: str, sentences: Sequence[SentenceSpan],
                       vectors: np.ndarray | None) -> None:
        old = set(get_all(self._sentences, where={"source": source}, include=[])["ids"])
        ids = [f"{s.chunk_id}:{s.start}" for s in sentences]
        if sentences and vectors is not None:
            if len(vectors) != len(sentences):
                raise StoreError("one embedding per sentence is required")
            for lo in range(0, len(ids), 1000):
                hi = lo + 1000
                self._sentences.upsert(
                    ids=ids[lo:hi], embeddings=[[float(x) for x in v] for v in vectors[lo:hi]],
                    metadatas=[{"source": s.source, "chunk_id": s.chunk_id, "start": s.start,
                                "end": s.end} for s in sentences[lo:hi]])
        stale = sorted(old - set(ids))
        if stale:
            self._sentences.delete(ids=stale)

    @_guarded
    def query_sentence_vectors(self, embedding: np.ndarray, k: int, with_vectors: bool = True
                               ) -> list[tuple[str, int, float, np.ndarray | None]]:
        """(chunk id, document offset of the sentence, cosine, stored vector) of the k sentences
        most similar to the query (several may share a chunk), in one store trip; Chroma
        returns fewer when it holds fewer."""
        if k <= 0:
            return []
        include = ["metadatas", "distances"] + (["embeddings"] if with_vectors else [])
        got = self._sentences.query(query_embeddings=[[float(x) for x in embedding]],
                                    n_results=k, include=include)
        vectors = got["embeddings"][0] if with_vectors else [None] * len(got["ids"][0])
        return [(m["chunk_id"], int(m["start"]), 1.0 - float(d),
                 None if v is None else np.asarray(v, dtype=np.float32))
                for m, d, v in zip(got["metadatas"][0], got["distances"][0], vectors)]

    @_guarded
    def sentence_vectors(self, chunk_ids: Sequence[str]) -> dict[tuple[str, int], np.ndarray]:
        """The sentence vectors stored at ingest for these chunks, by (chunk id, document
        offset of the sentence's start): one store trip, no embedding."""
        if not chunk_ids:
            return {}
        got = get_all(self._sentences, where={"chunk_id": {"$in": list(dict.fromkeys(chunk_ids))}},
                                  include=["embeddings", "metadatas"])
        return {(m["chunk_id"], int(m["start"])): np.asarray(v, dtype=np.float32)
                for m, v in zip(got["metadatas"], got["embeddings"])}

    @_guarded
    def _bump(self, source: str) -> None:
        """Record a write of ``source``: the generation counts up, a fresh random version names
        exactly this state of the store (two writers that both counted to the same generation
        still leave different versions), and the change log links it to the version before."""
        state = self._state()
        gen = int(state.get("generation", 0)) + 1
        version = uuid.uuid4().hex
        record(self._changes, version, str(state.get("version", "")), gen, source)
        self._docs.upsert(ids=[_STATE_ID], documents=[""], embeddings=[[1.0]],
                          metadatas=[{"generation": gen, "version": version,
                                      "chunks": int(self._chunks.count())}])

    @_guarded
    def changes_since(self, old: str, new: str) -> list[str] | None:
        """The documents written between two of ``version()``'s names, oldest first (one store
        trip); None when the change log cannot tell: then rebuild from the store."""
        return sources_between(self._changes, old, new)

    @_guarded
    def chunks_of(self, sources: Sequence[str]) -> list[Chunk]:
        """The stored chunks of these documents, in one store trip."""
        if not sources:
            return []
        got = get_all(self._chunks, where={"source": {"$in": list(dict.fromkeys(sources))}},
                               include=["documents", "metadatas"])
        chunks = [_chunk_from(i, d, m) for i, d, m in
                  zip(got["ids"], got["documents"], got["metadatas"])]
        return sorted(chunks, key=lambda c: (c.source, c.start))

    def _state(self) -> dict[str, Any]:
        got = self._docs.get(ids=[_STATE_ID], include=["metadatas"])
        return dict(got["metadatas"][0]) if got["ids"] else {}

    @_guarded
    def generation(self) -> int:
        return int(self._state().get("generation", 0))

    @_guarded
    def version(self) -> str:
        """A name for the store's current contents, read in one store trip: it changes on every
        write, by this process or any other. Derived indexes (BM25) key on it."""
        state = self._state()
        if "version" in state:
            return f"v{state['version']}:{state.get('chunks', '')}"
        # A store last written before versions were recorded: its generation and chunk count.
        return f"{state.get('generation', 0)}:{self._chunks.count()}"

    # ---- reads -----------------------------------------------------------------------------
    @_guarded
    def count(self) -> int:
        return int(self._chunks.count())

    @_guarded
    def all_chunks(self) -> list[Chunk]:
        got = get_all(self._chunks, include=["documents", "metadatas"])
        chunks = [_chunk_from(i, d, m) for i, d, m in
                  zip(got["ids"], got["documents"], got["metadatas"])]
        return sorted(chunks, key=lambda c: (c.source, c.start))

    @_guarded
    def query(self, embedding: np.ndarray, k: int) -> list[tuple[Chunk, float]]:
        """Top-k chunks by cosine similarity (1 = same direction), in one store trip."""
        if k <= 0:
            return []
        from llama_index.core.vector_stores.types import VectorStoreQuery

        result = self._vectors.query(VectorStoreQuery(
            query_embedding=[float(x) for x in embedding], similarity_top_k=k))
        out = []
        for node, sim in zip(result.nodes or [], result.similarities or []):
            meta = node.metadata
            chunk = Chunk(id=node.node_id, source=meta["source"], start=int(meta["start"]),
                          end=int(meta["end"]), text=node.get_content(), doc_hash=meta["doc_hash"])
            # The integration reports exp(-distance); cosine distance = 1 - cosine.
            out.append((chunk, 1.0 + math.log(max(sim, 1e-12))))
        return out


def _chunk_from(chunk_id: str, text: str, meta: dict[str, Any]) -> Chunk:
    return Chunk(id=chunk_id, source=meta["source"], start=int(meta["start"]), end=int(meta["end"]),
                 text=text, doc_hash=meta.get("doc_hash", ""))
