"""Chroma reads that can grow with the store, in pages Chroma can serve."""
from __future__ import annotations

from typing import Any

# Rows per read. Chroma 1.5.9's embedded store fails a read of more than 32,766 rows ("too many
# SQL variables", SQLite's limit; measured on a 100k-chunk store by bench/scale.py), so every
# read that can grow with the store goes in pages. A page of 10,000 chunks reads in ~0.7 s
# there, no slower per row than 5,000 or 20,000.
PAGE = 10_000


def get_all(collection: Any, **kwargs: Any) -> dict[str, list[Any]]:
    """``collection.get(**kwargs)`` read in pages of PAGE rows, merged (a row seen twice, when
    a write moved it between pages, counts once)."""
    include = kwargs.get("include", [])
    out: dict[str, list[Any]] = {"ids": [], **{k: [] for k in include}}
    seen: set[str] = set()
    offset = 0
    while True:
        got = collection.get(limit=PAGE, offset=offset, **kwargs)
        for i, row_id in enumerate(got["ids"]):
            if row_id not in seen:
                seen.add(row_id)
                out["ids"].append(row_id)
                for k in include:
                    out[k].append(got[k][i])
        if len(got["ids"]) < PAGE:
            return out
        offset += PAGE
