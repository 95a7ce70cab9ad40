"""Collection names: which ones are valid, and the Chroma collections that hold each one."""
from __future__ import annotations

import re
from typing import Any

# The collection every store has; it keeps the Chroma names of stores built before collections
# existed (Settings.collection, "beleg" by default), so old data folders keep working.
DEFAULT_COLLECTION = "default"
# Lower-case letters, digits and inner hyphens, 1-40 characters. No '_' and no '.': the Chroma
# names below use them to separate a collection from its parts, so no name can pose as another's.
_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
# Chroma collections of one beleg collection besides its chunk collection.
PART_SUFFIXES = ("_sentences", "_documents", "_changes")


class CollectionNameError(ValueError):
    """A collection name that cannot be used (the message says which are allowed)."""


def checked_collection(name: str | None) -> str:
    """The collection to use: ``name``, or the default one when none is given."""
    if name is None or name == "":
        return DEFAULT_COLLECTION
    if not isinstance(name, str) or not _NAME.match(name):
        shown = repr(name)[:60]
        raise CollectionNameError(
            f"collection name {shown} is not valid: use 1-40 lower-case letters, digits and "
            "hyphens, starting and ending with a letter or digit (for example 'hr')")
    return name


def chroma_name(base: str, collection: str) -> str:
    """The Chroma chunk collection of a beleg collection (its parts add PART_SUFFIXES)."""
    return base if collection == DEFAULT_COLLECTION else f"{base}.{collection}"


def collection_names(client: Any, base: str) -> list[str]:
    """The beleg collections under ``base``: the default one (always there, created on first
    use) and the named ones the Chroma client holds. Read from the server each time, so a
    collection another process created is seen at once."""
    found: set[str] = set()
    for c in client.list_collections():
        name = c if isinstance(c, str) else c.name
        if name.endswith(PART_SUFFIXES):
            continue
        if name == base:
            found.add(DEFAULT_COLLECTION)
        elif name.startswith(base + ".") and _NAME.match(name[len(base) + 1:]):
            found.add(name[len(base) + 1:])
    return [DEFAULT_COLLECTION] + sorted(found - {DEFAULT_COLLECTION})
