"""Document and Chunk: the one schema every later stage uses."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any


def content_hash(text: str) -> str:
    """Stable hash of a text (hex sha256), used for dedup and chunk ids."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Document:
    """A loaded source: its name, its body text and metadata (date, pages, ...).

    All character offsets anywhere in beleg point into ``text``.
    """

    source: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def hash(self) -> str:
        return content_hash(self.text)


@dataclass(frozen=True)
class Chunk:
    """A span of a document: ``document.text[start:end] == text`` always holds."""

    id: str
    source: str
    start: int
    end: int
    text: str
    doc_hash: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "doc_hash": self.doc_hash,
        }


class IngestError(Exception):
    """A file could not be turned into a Document."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class UnsupportedFileType(IngestError):
    """The file's type has no loader."""


class BrokenFile(IngestError):
    """The file has a supported type but cannot be read."""
