"""Turn a file path into a Document, by file type, with clear errors for bad input."""
from __future__ import annotations

import logging
import re
from collections.abc import Callable
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


_BLOCK_TAGS = ["address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "figcaption",
               "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "li", "main", "nav", "ol",
               "p", "pre", "section", "table", "td", "th", "tr", "ul", "br", "hr"]


def _load_html(path: Path) -> tuple[str, dict[str, object]]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_read_text(path), "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "head"]):
        if tag.name == "head":
            continue
        tag.decompose()
    title = soup.title.get_text(strip=True) if soup.title else ""
    if soup.head:
        soup.head.decompose()
    # Every block element becomes its own paragraph; nested blocks do not repeat text.
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before("\n\n")
        tag.insert_after("\n\n")
    raw = soup.get_text()
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", raw)]
    text = "\n\n".join(p for p in paragraphs if p)
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


def _load_docx(path: Path) -> tuple[str, dict[str, object]]:
    import zipfile
    from xml.etree.ElementTree import ParseError

    import docx2txt

    try:
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
