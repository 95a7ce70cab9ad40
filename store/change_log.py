"""The store's change log: which document each write touched, linked version to version."""
from __future__ import annotations

from typing import Any

from store.chroma_reads import get_all

# Writes kept in the change log, so a reader this many writes behind still catches up by the
# documents that changed; one further behind rebuilds its index. A record is a few bytes; at
# 1,000 a reader's catch-up read stays one small trip.
CHANGES_KEPT = 1000


def record(changes: Any, version: str, previous: str, generation: int, source: str) -> None:
    """Log that the write to ``source`` turned ``previous`` into ``version`` (pruning now and
    then what lies more than CHANGES_KEPT writes back)."""
    changes.add(ids=[version], embeddings=[[1.0]], metadatas=[
        {"generation": generation, "prev": previous, "source": source}])
    if generation % 100 == 0:
        changes.delete(where={"generation": {"$lt": generation - CHANGES_KEPT}})


def sources_between(changes: Any, old: str, new: str) -> list[str] | None:
    """The documents written between two names of ``ChunkStore.version()``, oldest first, in
    one read; None when the log cannot tell (the old version was pruned from it, written before
    the log existed, or two writers raced from it)."""
    old_id, new_id = version_id(old), version_id(new)
    if old_id is None or new_id is None:
        return None
    got = get_all(changes, include=["metadatas"])
    after: dict[str, list[tuple[str, str]]] = {}
    for version, meta in zip(got["ids"], got["metadatas"]):
        after.setdefault(str(meta.get("prev", "")), []).append((version, str(meta["source"])))
    sources, at = [], old_id
    while at != new_id:
        step = after.get(at, [])
        if len(step) != 1:  # a gap, or a fork that one of the two writes would hide
            return None
        at, source = step[0]
        sources.append(source)
    return sources


# The names parsed here are made by ChunkStore.version(): "v<random id>:<chunks>", or
# "<generation>:<chunks>" for a store last written before versions were recorded.
def version_id(version: str) -> str | None:
    """The random id inside a name from ``version()``: '' for the empty store (the change
    log starts there), None for a store last written before versions were recorded."""
    if version == "0:0":
        return ""
    return version[1:].split(":", 1)[0] if version.startswith("v") else None


def chunk_count(version: str) -> int | None:
    """The chunk count a name from ``version()`` carries, None when it carries none."""
    count = version.rsplit(":", 1)[-1]
    return int(count) if count.isdigit() else None
