"""Add, replace and remove documents: files -> Documents -> chunks -> embeddings -> store."""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from app.names import DocumentNameError, checked_name
from ingest.chunking import ChunkingConfig, chunk_document
from ingest.documents import Chunk, Document, IngestError
from ingest.instructions import instruction_spans
from ingest.loaders import load_document, supported_suffixes
from ingest.sentences import sentence_spans
from ingest.titles import document_title
from store.collection import ChunkStore, SentenceSpan, StoredDocument
from store.embedding import Embedder

logger = logging.getLogger(__name__)


@dataclass
class IngestReport:
    """What one ingest run did, file by file."""

    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"added": self.added, "replaced": self.replaced, "unchanged": self.unchanged,
                "failed": [{"path": p, "reason": r} for p, r in self.failed]}


def load_upload(filename: str | None, path: Path, report: IngestReport, max_bytes: int,
                shown: str = "") -> Document | None:
    """One uploaded file (named ``filename`` by its sender, its bytes at ``path``) as a
    Document, or None with the reason recorded under ``report.failed``: the name rule, the size
    limit and the loader's own checks, as the API and the chat apply them alike."""
    try:
        name = checked_name(filename)
    except DocumentNameError as exc:
        report.failed.append((shown or str(filename), str(exc)))
        return None
    if path.stat().st_size > max_bytes:
        report.failed.append((name, f"larger than {max_bytes} bytes"))
        return None
    try:
        return load_document(path, source=name)
    except IngestError as exc:
        report.failed.append((name, exc.reason))
        return None


def expand_paths(paths: Iterable[Path]) -> list[tuple[Path, str]]:
    """Files to ingest with their source names; folders are walked (hidden files skipped)."""
    out: list[tuple[Path, str]] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p)
                if f.is_file() and not any(part.startswith(".") for part in rel.parts) \
                        and f.suffix.lower() in supported_suffixes():
                    out.append((f, rel.as_posix()))
        else:
            out.append((p, p.name))
    return out


# Chunks and sentences embedded per call when many documents come at once. Sorting a call's
# texts by length needs many of them: the 12 first German XQuAD dev articles took 10.3 s a
# document at a time and 7.6 s in one call of 336 texts (2 threads, store/st_embedder.py
# BATCH_SIZE). The group bounds what a large ingest holds in memory before it is stored.
EMBED_GROUP = 2048


@dataclass
class _Prepared:
    doc: Document
    chunks: list[Chunk]
    sentences: list[SentenceSpan]
    replaced: bool

    def texts(self) -> list[str]:
        return ([c.text for c in self.chunks]
                + [self.doc.text[s.start:s.end] for s in self.sentences])


@dataclass
class _Batch:
    docs: list[_Prepared] = field(default_factory=list)
    texts: int = 0


class Library:
    """The documents beleg knows, kept in a ChunkStore."""

    def __init__(self, store: ChunkStore, embedder: Embedder,
                 chunking: ChunkingConfig | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.chunking = chunking or ChunkingConfig()

    def add_document(self, doc: Document) -> str:
        """Store one document; returns 'added', 'replaced' or 'unchanged'.

        The name follows the same rule as an upload's (app/names.py), so every stored
        document can be read and removed through the API too."""
        report = IngestReport()
        self.add_documents([doc], report)
        return next(o for o in ("added", "replaced", "unchanged") if getattr(report, o))

    def add_paths(self, paths: Iterable[Path], progress: bool = False) -> IngestReport:
        """Ingest files and folders; a bad file is reported and skipped, nothing stored is lost."""
        report = IngestReport()
        files = expand_paths(paths)
        iterator: Iterable[tuple[Path, str]] = files
        if progress and len(files) > 1:
            from tqdm import tqdm

            iterator = tqdm(files, desc="ingest", unit="file")
        batch = _Batch()
        for path, source in iterator:
            self._store_if_queued(source, batch, report)
            try:
                prepared = self._prepare(load_document(path, source=source))
            except IngestError as exc:
                logger.warning("skipped %s: %s", path, exc.reason)
                report.failed.append((str(path), exc.reason))
                continue
            except (ValueError, OSError, RuntimeError) as exc:  # a reader library's own error
                logger.warning("skipped %s: %s", path, exc)
                report.failed.append((str(path), f"cannot read the file ({exc})"))
                continue
            self._queue(prepared, batch, report)
        self._store(batch, report)
        return report

    def add_documents(self, docs: Iterable[Document], report: IngestReport) -> IngestReport:
        """Store checked documents, each recorded as added, replaced or unchanged. A document
        whose name is refused raises IngestError once the documents before it are stored."""
        batch = _Batch()
        for doc in docs:
            self._store_if_queued(doc.source, batch, report)
            try:
                prepared = self._prepare(doc)
            except IngestError:
                self._store(batch, report)
                raise
            self._queue(prepared, batch, report)
        self._store(batch, report)
        return report

    def _prepare(self, doc: Document) -> _Prepared | tuple[str]:
        """A document cut into chunks and sentences, ready to embed; its name alone when the
        store already holds exactly this text."""
        try:
            checked_name(doc.source, allow_folders=True)
        except DocumentNameError as exc:
            raise IngestError(doc.source, str(exc)) from None
        old_hash = self.store.document_hash(doc.source)
        if old_hash == doc.hash:
            return (doc.source,)
        if "chars" not in doc.metadata:  # the size the document list shows
            doc = replace(doc, metadata={**doc.metadata, "chars": len(doc.text)})
        if not doc.metadata.get("title"):  # shown in the document list and the source view
            title = document_title(doc.text, doc.metadata)
            if title:
                doc = replace(doc, metadata={**doc.metadata, "title": title})
        flagged = instruction_spans(doc.text)
        if flagged:  # shown in the document list; the text stays data, quoted like any other
            logger.warning("%s holds %d instruction-like passage(s), e.g. %r", doc.source,
                           len(flagged), doc.text[flagged[0][0]:flagged[0][1]])
            doc = replace(doc, metadata={**doc.metadata,
                                         "instruction_like": [list(s) for s in flagged[:20]]})
        chunks = chunk_document(doc, self.chunking)
        sentences = [SentenceSpan(c.id, c.source, c.start + s, c.start + e)
                     for c in chunks for s, e in sentence_spans(c.text)]
        return _Prepared(doc, chunks, sentences, replaced=old_hash is not None)

    def _queue(self, prepared: _Prepared | tuple[str], batch: _Batch, report: IngestReport
               ) -> None:
        if isinstance(prepared, tuple):  # the store holds this text already
            report.unchanged.extend(prepared)
            return
        batch.docs.append(prepared)
        batch.texts += len(prepared.chunks) + len(prepared.sentences)
        if batch.texts >= EMBED_GROUP:
            self._store(batch, report)

    def _store_if_queued(self, source: str, batch: _Batch, report: IngestReport) -> None:
        """A name given twice: the first copy is stored before the second is compared."""
        if any(p.doc.source == source for p in batch.docs):
            self._store(batch, report)

    def _store(self, batch: _Batch, report: IngestReport) -> None:
        """Embed the batch's chunks and sentences in one call (sorted by length across all its
        documents, so each forward pass holds texts of one length), then store each document."""
        if not batch.docs:
            return
        texts = [t for p in batch.docs for t in p.texts()]
        vectors = self.embedder.embed_passages(texts)
        at = 0
        for p in batch.docs:
            n, m = len(p.chunks), len(p.sentences)
            self.store.put(p.doc, p.chunks, vectors[at:at + n], p.sentences,
                           vectors[at + n:at + n + m])
            at += n + m
            outcome = "replaced" if p.replaced else "added"
            logger.info("%s %s (%d chunks)", outcome, p.doc.source, len(p.chunks))
            getattr(report, outcome).append(p.doc.source)
        batch.docs.clear()
        batch.texts = 0

    def remove(self, source: str) -> bool:
        return self.store.remove(source)

    def documents(self) -> list[StoredDocument]:
        return self.store.documents()
