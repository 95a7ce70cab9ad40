"""Citations: numbered sources, exact supporting spans, and attribution of sentences to sources."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.documents import Chunk
from ingest.sentences import sentence_spans


@dataclass(frozen=True)
class Source:
    """A numbered retrieved chunk, shown to the user before the answer."""

    n: int
    chunk: Chunk
    score: float

    def to_dict(self) -> dict[str, object]:
        c = self.chunk
        return {"n": self.n, "source": c.source, "start": c.start, "end": c.end,
                "score": round(self.score, 4), "text": c.text}


@dataclass(frozen=True)
class Citation:
    """``quote == document.text[start:end]``: the exact span that supports a statement."""

    n: int
    source: str
    start: int
    end: int
    quote: str

    def to_dict(self) -> dict[str, object]:
        return {"n": self.n, "source": self.source, "start": self.start, "end": self.end,
                "quote": self.quote}


@dataclass(frozen=True)
class Sentence:
    """A sentence of a source chunk, with document offsets."""

    n: int
    source: str
    start: int
    end: int
    text: str


def source_sentences(sources: list[Source]) -> list[Sentence]:
    """Every sentence of the numbered sources, offsets relative to their documents."""
    out = []
    for src in sources:
        c = src.chunk
        for s, e in sentence_spans(c.text):
            out.append(Sentence(src.n, c.source, c.start + s, c.start + e, c.text[s:e]))
    return out


def citation_for(sentence: Sentence) -> Citation:
    return Citation(sentence.n, sentence.source, sentence.start, sentence.end, sentence.text)


_MARKER = re.compile(r"\s*\[(\d+)\]")


def markers(text: str) -> list[int]:
    """The [n] markers in a text, in order."""
    return [int(m) for m in _MARKER.findall(text)]


def strip_markers(text: str) -> str:
    return _MARKER.sub("", text).strip()
