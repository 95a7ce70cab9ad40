"""Document names: what a stored document may be called, checked wherever a name comes in."""
from __future__ import annotations

import unicodedata

# A file name longer than this does not fit most file systems (ext4, NTFS, APFS: 255 bytes).
MAX_NAME_BYTES = 255
# Names beginning like this are the store's own records (the generation counter).
RESERVED_PREFIX = "__"


class DocumentNameError(ValueError):
    """A document name beleg refuses, with the reason."""


def checked_name(name: str | None, allow_folders: bool = False) -> str:
    """``name`` as a document name, or DocumentNameError saying why not.

    Uploads keep only the last path part; ids from the CLI may name folders (``a/b.txt``)
    when ``allow_folders`` is set, but never ``.`` or ``..`` parts.
    """
    if name is None or not name.strip():
        raise DocumentNameError("the file has no name")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise DocumentNameError("the name is not valid Unicode") from None
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise DocumentNameError("the name contains control characters (such as NUL)")
    parts = name.replace("\\", "/").split("/")
    if not allow_folders:
        parts = parts[-1:]
    if any(p in ("", ".", "..") for p in parts):
        raise DocumentNameError("the name must be a file name, not '.', '..' or a folder")
    if size > MAX_NAME_BYTES:
        raise DocumentNameError(f"the name has {size} bytes; the limit is {MAX_NAME_BYTES}")
    base = "/".join(parts)
    if parts[0].startswith(RESERVED_PREFIX):
        raise DocumentNameError(f"names starting with '{RESERVED_PREFIX}' are reserved for beleg's "
                         "own records")
    return base


def is_document_name(name: str) -> bool:
    """Could a stored document have this id (the rule of checked_name, folders allowed)?"""
    try:
        checked_name(name, allow_folders=True)
    except DocumentNameError:
        return False
    return True
