"""Turn a file path into a Document, by file type, with clear errors for bad input."""
from __future__ import annotations

import logging
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

from ingest.documents import BrokenFile, Document, UnsupportedFileType

logger = logging.getLogger(__name__)

# A leading " date 2025-09-18 " marker is metadata, not body text.
_DATE_MARKER = re.compile(r"\A\s*date (\d{4}-\d{2}-\d{2})[ \t]+")


def _split_date_marker(text: str) -> tuple[str, dict[str, str]]:
    m = _DATE_MARKER.match(text)
    if not m:
        return text, {}
    return text[m.end():], {"date": m.group(1)}


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise BrokenFile(str(path), "not valid UTF-8 or Windows-1252 text")


def _load_plain(path: Path) -> tuple[str, dict[str, object]]:
    text = _read_text(path)
    if "\x00" in text:
        raise BrokenFile(str(path), "contains NUL bytes; is it really a text file?")
    body, meta = _split_date_marker(text)
    return body, dict(meta)


_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "figcaption", "footer",
    "h1", "h2", "h3", "h4", "h5", "h6", "header", "li", "main", "nav", "ol", "p", "pre",
    "section", "table", "td", "th", "tr", "ul", "br", "hr"})
_SKIPPED_TAGS = frozenset({"script", "style", "noscript", "template", "head"})
_VOID_TAGS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
                        "meta", "source", "track", "wbr"})
# Tags a new one of the same name closes (HTML lets <p>, <li>, <td> ... stay unclosed).
_SELF_CLOSING_SIBLINGS = frozenset({"p", "li", "dt", "dd", "tr", "td", "th", "option"})
# Deeper element nesting than this is refused. Real pages nest a few dozen levels: 316 HTML
# manuals on this machine (/usr/share/doc, site-packages) nest 13 deep in the median and 25 at
# most. 100,000 nested <div>s cost 624 s of CPU in the tree parser this loader replaced.
MAX_HTML_DEPTH = 1000


class _TooDeep(Exception):
    pass


class _TextExtractor(HTMLParser):
    """Streams an HTML file into paragraphs in one pass: block elements become paragraph
    breaks, scripts, styles and the head are dropped, the title is kept."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self.stack: list[str] = []
        self.skipping = 0
        self.in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID_TAGS:
            if tag in _BLOCK_TAGS:
                self.parts.append("\n\n")
            return
        if tag in _SELF_CLOSING_SIBLINGS and self.stack and self.stack[-1] == tag:
            self.handle_endtag(tag)
        self.stack.append(tag)
        if len(self.stack) > MAX_HTML_DEPTH:
            raise _TooDeep
        if tag == "title":
            self.in_title = True
        elif tag in _SKIPPED_TAGS:
            self.skipping += 1
        if tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.stack[-50:]:
            return  # a stray end tag
        while self.stack:
            top = self.stack.pop()
            if top == "title":
                self.in_title = False
            elif top in _SKIPPED_TAGS:
                self.skipping = max(0, self.skipping - 1)
            if top in _BLOCK_TAGS:
                self.parts.append("\n\n")
            if top == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        elif not self.skipping:
            self.parts.append(data)


def _load_html(path: Path) -> tuple[str, dict[str, object]]:
    parser = _TextExtractor()
    try:
        parser.feed(_read_text(path))
        parser.close()
    except _TooDeep:
        raise BrokenFile(str(path), f"the HTML nests elements more than {MAX_HTML_DEPTH} levels "
                                    "deep; save the page as plain text or simplify it") from None
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", "".join(parser.parts))]
    text = "\n\n".join(p for p in paragraphs if p)
    title = " ".join("".join(parser.title).split())
    meta: dict[str, object] = {"title": title} if title else {}
    return text, meta


def _load_pdf(path: Path) -> tuple[str, dict[str, object]]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        pages = [(p.extract_text() or "").strip() for p in reader.pages]
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise BrokenFile(str(path), f"cannot read PDF ({exc})") from exc
    return "\n\n".join(p for p in pages if p), {"pages": len(pages)}


# The XML inside a DOCX is read only up to this size. A 300-page text document holds about 5 MB
# of XML; a 530 KB upload that inflated to 545 MB took 1.6 GB of memory before this check. The
# zip reader never inflates a member past its declared size, so checking that is enough.
MAX_DOCX_XML_BYTES = 64 * 1024 * 1024


def _load_docx(path: Path) -> tuple[str, dict[str, object]]:
    import zipfile
    from xml.etree.ElementTree import ParseError

    import docx2txt

    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(i.file_size for i in archive.infolist()
                           if i.filename.lower().endswith((".xml", ".rels")))
        if unpacked > MAX_DOCX_XML_BYTES:
            raise BrokenFile(str(path), f"the DOCX unpacks to {unpacked} bytes of XML, more than "
                                        f"the limit of {MAX_DOCX_XML_BYTES} (a zip bomb?)")
        text = docx2txt.process(str(path))
    except (zipfile.BadZipFile, KeyError, OSError, ParseError, ValueError) as exc:
        raise BrokenFile(str(path), f"cannot read DOCX ({exc})") from exc
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text or "")]
    return "\n\n".join(p for p in paragraphs if p), {}


LOADERS: dict[str, Callable[[Path], tuple[str, dict[str, object]]]] = {
    ".txt": _load_plain,
    ".md": _load_plain,
    ".markdown": _load_plain,
    ".html": _load_html,
    ".htm": _load_html,
    ".pdf": _load_pdf,
    ".docx": _load_docx,
}


def supported_suffixes() -> list[str]:
    """File suffixes beleg can ingest."""
    return sorted(LOADERS)


def load_document(path: Path, source: str | None = None) -> Document:
    """Load one file; raises UnsupportedFileType or BrokenFile with the file's name."""
    path = Path(path)
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise UnsupportedFileType(
            str(path), f"unsupported file type '{path.suffix or '(none)'}'. "
            f"Supported types are: {supported_suffixes()}")
    if not path.is_file():
        raise BrokenFile(str(path), "no such file")
    text, meta = loader(path)
    text = text.replace("\r\n", "\n")
    if not text.strip():
        raise BrokenFile(str(path), "no text could be extracted (empty or scanned?)")
    meta.setdefault("file_type", path.suffix.lower().lstrip("."))
    logger.debug("loaded %s (%d chars)", path, len(text))
    return Document(source=source or path.name, text=text, metadata=meta)
