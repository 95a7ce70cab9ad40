"""A document's title: from its metadata, else its first heading or first sentence."""
from __future__ import annotations

import re

from ingest.sentences import paragraph_spans, sentence_spans

# Longer first lines are body text, not headings; their first sentence is cut to this length.
MAX_TITLE_CHARS = 100
_MARKDOWN_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")


def document_title(text: str, metadata: dict[str, object] | None = None) -> str:
    """The title a person would give the document ('' for an empty text)."""
    given = (metadata or {}).get("title")
    if isinstance(given, str) and given.strip():
        return _clip(given.strip())
    for line in text.splitlines()[:50]:
        heading = _MARKDOWN_HEADING.match(line)
        if heading:
            return _clip(heading.group(1))
    paragraphs = paragraph_spans(text)
    if not paragraphs:
        return ""
    start, end = paragraphs[0]
    first = text[start:end]
    if len(first) <= MAX_TITLE_CHARS and "\n" not in first:
        return first
    s, e = sentence_spans(text, start, end)[0]
    return _clip(text[s:e])


def _clip(title: str) -> str:
    title = " ".join(title.split())
    if len(title) <= MAX_TITLE_CHARS:
        return title
    cut = title[:MAX_TITLE_CHARS].rsplit(" ", 1)[0]
    return cut + "…"
