"""Split a Document into chunks with exact character offsets (sentence-aware, paragraph-first)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ingest.documents import Chunk, Document
from ingest.sentences import paragraph_spans, sentence_spans


@dataclass(frozen=True)
class ChunkingConfig:
    """Chunk sizes in characters.

    A paragraph stays whole when it fits ``max_chars``; a longer one is cut at sentence
    boundaries. Paragraphs shorter than ``min_chars`` (headings, one-liners) join the next one.
    """

    max_chars: int = 1200
    min_chars: int = 100


def chunk_id(source: str, start: int, text: str) -> str:
    """Content-derived chunk id: same source, position and text give the same id."""
    digest = hashlib.sha256(f"{source}\x00{start}\x00{text}".encode()).hexdigest()
    return digest[:24]


def _pieces(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Cut one paragraph into spans no longer than max_chars, at sentence ends where possible."""
    if end - start <= max_chars:
        return [(start, end)]
    out: list[tuple[int, int]] = []
    cur_start: int | None = None
    cur_end = start
    for s, e in sentence_spans(text, start, end):
        for s2, e2 in _hard_split(text, s, e, max_chars):
            if cur_start is not None and e2 - cur_start > max_chars:
                out.append((cur_start, cur_end))
                cur_start = None
            if cur_start is None:
                cur_start = s2
            cur_end = e2
    if cur_start is not None:
        out.append((cur_start, cur_end))
    return out


def _hard_split(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Split an over-long sentence at whitespace."""
    spans: list[tuple[int, int]] = []
    while end - start > max_chars:
        cut = text.rfind(" ", start + max_chars // 2, start + max_chars)
        if cut <= start:
            cut = start + max_chars
        spans.append((start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        spans.append((start, end))
    return spans


def chunk_spans(text: str, config: ChunkingConfig | None = None) -> list[tuple[int, int]]:
    """Chunk boundaries for a text."""
    cfg = config or ChunkingConfig()
    spans: list[tuple[int, int]] = []
    pending: int | None = None  # start of a short paragraph waiting to join the next one
    for p_start, p_end in paragraph_spans(text):
        start = p_start if pending is None else pending
        if p_end - p_start < cfg.min_chars:
            if pending is None:
                pending = p_start
            if p_end - start >= cfg.min_chars:
                spans.append((start, p_end))
                pending = None
            continue
        pending = None
        if p_start != start and p_end - start > cfg.max_chars:
            spans.append((start, _last_end_before(text, start, p_start)))
            start = p_start
        spans.extend(_pieces(text, start, p_end, cfg.max_chars))
    if pending is not None:
        tail = (pending, len(text.rstrip()))
        if spans and tail[1] - spans[-1][0] <= cfg.max_chars:
            spans[-1] = (spans[-1][0], tail[1])
        else:
            spans.append(tail)
    return spans


def _last_end_before(text: str, start: int, limit: int) -> int:
    end = limit
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


def chunk_document(doc: Document, config: ChunkingConfig | None = None) -> list[Chunk]:
    """All chunks of a document; ``doc.text[c.start:c.end] == c.text`` for each."""
    doc_hash = doc.hash
    chunks = []
    for start, end in chunk_spans(doc.text, config):
        text = doc.text[start:end]
        chunks.append(Chunk(id=chunk_id(doc.source, start, text), source=doc.source,
                            start=start, end=end, text=text, doc_hash=doc_hash))
    return chunks
