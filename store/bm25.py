"""BM25 in segments: rows are added and removed at a cost in proportion to the change."""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

# bm25s's defaults (method "lucene"), so scores match an index bm25s builds from scratch.
K1 = 1.5
B = 0.75


@dataclass
class _Segment:
    tf: sp.csc_matrix  # rows x terms known when the segment was built
    lengths: np.ndarray  # tokens per row
    alive: np.ndarray  # False once a row is removed

    @property
    def rows(self) -> int:
        return len(self.lengths)


class Bm25Segments:
    """Lucene's BM25 over a row space that grows at the end and loses rows anywhere.

    Every added batch of rows is a segment of term counts; a removed row is only marked dead.
    The collection statistics (row count, mean length, document frequencies) are kept for the
    live rows, so the scores equal those of an index built from the live rows alone. Adjacent
    tail segments merge when the newer is at least half the size of the older (each row is
    merged O(log n) times), and all segments merge once half the row space is dead: both drop
    the dead rows, and ``add`` and ``compact_if_sparse`` say from which row on numbers moved.
    """

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self.df = np.zeros(0, dtype=np.int64)
        self.segments: list[_Segment] = []
        self.live_rows = 0
        self.live_tokens = 0

    def copy(self) -> Bm25Segments:
        """An independent index sharing the (never changed) term-count matrices: a reader
        may go on scoring the original while the copy changes."""
        other = Bm25Segments()
        other.vocab = dict(self.vocab)
        other.df = self.df.copy()
        other.segments = [_Segment(s.tf, s.lengths, s.alive.copy()) for s in self.segments]
        other.live_rows, other.live_tokens = self.live_rows, self.live_tokens
        return other

    @property
    def size(self) -> int:
        """Rows in the row space, dead ones included."""
        return sum(s.rows for s in self.segments)

    def add(self, docs: Sequence[Sequence[str]]) -> int | None:
        """Append one row per document (its tokens). When segments merged, returns the first
        row of the merged range: from there on the dead rows are gone, the live ones in order."""
        if not docs:
            return None
        rows, cols, counts = [], [], []
        for r, toks in enumerate(docs):
            for term, n in Counter(toks).items():
                rows.append(r)
                cols.append(self.vocab.setdefault(term, len(self.vocab)))
                counts.append(n)
        width = len(self.vocab)
        if width > len(self.df):
            self.df = np.concatenate([self.df, np.zeros(width - len(self.df), dtype=np.int64)])
        cols_a = np.asarray(cols, dtype=np.int64)
        np.add.at(self.df, cols_a, 1)
        tf = sp.csc_matrix((np.asarray(counts, dtype=np.float32), (rows, cols_a)),
                           shape=(len(docs), width))
        lengths = np.asarray([len(t) for t in docs], dtype=np.int64)
        self.segments.append(_Segment(tf, lengths, np.ones(len(docs), dtype=bool)))
        self.live_rows += len(docs)
        self.live_tokens += int(lengths.sum())
        return self._merge_tail()

    def remove(self, row: int, tokens: Sequence[str]) -> None:
        """Mark a row dead (a dead row scores 0); ``tokens`` are the ones it was added with
        (a column-major matrix would have to scan the whole segment to find them)."""
        for seg in self.segments:
            if row < seg.rows:
                if seg.alive[row]:
                    seg.alive[row] = False
                    terms = [self.vocab[t] for t in set(tokens)]
                    self.df[terms] -= 1
                    self.live_rows -= 1
                    self.live_tokens -= int(seg.lengths[row])
                return
            row -= seg.rows
        raise IndexError("row out of range")

    def compact_if_sparse(self) -> int | None:
        """Merge all segments when half the row space is dead (returns 0 then, as ``add``)."""
        if self.size > 1 and self.live_rows * 2 <= self.size:
            return self._merge(0)
        return None

    def has_term(self, term: str) -> bool:
        i = self.vocab.get(term)
        return i is not None and self.df[i] > 0

    def document_frequency(self, term: str) -> int:
        i = self.vocab.get(term)
        return 0 if i is None else int(self.df[i])

    def scores(self, tokens: Sequence[str]) -> np.ndarray:
        """The BM25 score of every row (dead rows 0) for the query tokens; a repeated token
        counts again, as in bm25s."""
        out = np.zeros(self.size, dtype=np.float32)
        if not self.live_rows:
            return out
        avg = self.live_tokens / self.live_rows
        for term in tokens:
            i = self.vocab.get(term)
            if i is None or self.df[i] <= 0:
                continue
            df = int(self.df[i])
            idf = math.log(1 + (self.live_rows - df + 0.5) / (df + 0.5))
            offset = 0
            for seg in self.segments:
                if i < seg.tf.shape[1]:
                    lo, hi = seg.tf.indptr[i], seg.tf.indptr[i + 1]
                    rows = seg.tf.indices[lo:hi]
                    tf = seg.tf.data[lo:hi]
                    norm = K1 * ((1 - B) + B * seg.lengths[rows] / avg)
                    out[offset + rows] += (idf * tf / (norm + tf)).astype(np.float32)
                offset += seg.rows
        offset = 0
        for seg in self.segments:
            if seg.rows and not seg.alive.all():
                out[offset:offset + seg.rows][~seg.alive] = 0.0
            offset += seg.rows
        return out

    # ---- merging ---------------------------------------------------------------------------
    def _merge_tail(self) -> int | None:
        first = None
        while len(self.segments) >= 2 and self.segments[-1].rows * 2 >= self.segments[-2].rows:
            first = self._merge(len(self.segments) - 2)
        return first

    def _merge(self, start: int) -> int:
        """Merge segments[start:] into one, dropping dead rows (the live ones keep their
        order). Returns the first row of the merged range."""
        first = sum(s.rows for s in self.segments[:start])
        width = len(self.vocab)
        parts, lengths = [], []
        for seg in self.segments[start:]:
            live = np.flatnonzero(seg.alive)
            m = seg.tf.tocsr()[live]
            m.resize((len(live), width))
            parts.append(m)
            lengths.append(seg.lengths[live])
        tf = sp.vstack(parts, format="csc").astype(np.float32)
        merged = np.concatenate(lengths)
        self.segments[start:] = [_Segment(tf, merged, np.ones(len(merged), dtype=bool))]
        return first
