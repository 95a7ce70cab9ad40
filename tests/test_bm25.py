"""BM25 in segments: after any mix of additions and removals its scores equal those of bm25s
built from scratch over the live rows, and merging keeps the live rows in order."""
from __future__ import annotations

import bm25s
import numpy as np
import pytest

from store.bm25 import Bm25Segments

WORDS = [f"w{i}" for i in range(40)]


def fresh_scores(docs: list[list[str]], query: list[str]) -> np.ndarray:
    index = bm25s.BM25()
    index.index(docs, show_progress=False)
    known = {t for d in docs for t in d}
    toks = [t for t in query if t in known]
    return np.asarray(index.get_scores(toks), dtype=np.float32) if toks else np.zeros(len(docs))


def random_doc(rng: np.random.Generator) -> list[str]:
    p = 1 / np.arange(1, len(WORDS) + 1)
    return list(rng.choice(WORDS, int(rng.integers(1, 15)), p=p / p.sum()))


@pytest.mark.parametrize("seed", range(6))
def test_scores_equal_a_fresh_bm25s_index_after_adds_and_removes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    index = Bm25Segments()
    rows: list[list[str] | None] = []  # what the row space holds (None = removed)
    for _ in range(25):
        if rows and rng.random() < 0.4:  # remove a few live rows
            for r in rng.choice(len(rows), min(3, len(rows)), replace=False):
                if rows[r] is not None:
                    index.remove(int(r), rows[r])  # type: ignore[arg-type]
                    rows[r] = None
            moved = index.compact_if_sparse()
        else:
            batch = [random_doc(rng) for _ in range(int(rng.integers(1, 8)))]
            rows += batch
            moved = index.add(batch)
        if moved is not None:  # the merged range dropped its dead rows
            rows = rows[:moved] + [r for r in rows[moved:] if r is not None]
        assert index.size == len(rows)
        live = [i for i, r in enumerate(rows) if r is not None]
        if not live:
            continue
        query = list(rng.choice(WORDS[:20], 3)) + ["unknown"]
        got = index.scores(query)
        want = fresh_scores([rows[i] for i in live], query)  # type: ignore[misc]
        np.testing.assert_allclose(got[live], want, rtol=1e-5, atol=1e-6)
        dead = [i for i, r in enumerate(rows) if r is None]
        assert not got[dead].any()


def test_tail_segments_merge_so_few_remain() -> None:
    index = Bm25Segments()
    for i in range(200):
        index.add([[f"w{i % 7}", "common"]])
    assert index.size == 200 and len(index.segments) <= 9  # binary-counter merging: log2(200)


def test_removal_updates_document_frequency_and_counts() -> None:
    index = Bm25Segments()
    index.add([["a", "b"], ["a"], ["c"]])
    index.remove(0, ["a", "b"])
    index.remove(0, ["a", "b"])  # twice: no effect
    assert index.document_frequency("a") == 1 and not index.has_term("b")
    assert index.live_rows == 2 and index.live_tokens == 2
    with pytest.raises(IndexError):
        index.remove(3, ["c"])
