"""BM25 over the stored chunks (German stemming, German and English stopwords), kept on disk."""
from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_GERMAN

from ingest.documents import Chunk
from store.bm25 import Bm25Segments

logger = logging.getLogger(__name__)
# bm25s sets its own logger to DEBUG on import, which floods every log with index builds.
logging.getLogger("bm25s").setLevel(logging.WARNING)

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
# bm25s's German and English lists, plus interrogatives, auxiliaries and hedges: words that
# carry the question's form, not its content, in any document.
STOPWORDS = frozenset(STOPWORDS_GERMAN) | frozenset(STOPWORDS_EN) | frozenset(
    "wie viel viele welche welcher welches wer wann warum weshalb wo woher wohin was "
    "how many much which who whom when why where what does did do have has had wurde wurden "
    "worden wird werden ist sind war waren gibt gab tell say please bitte "
    "about around approximately roughly some nearly almost least rund etwa circa ca ungefähr "
    "fast knapp mindestens höchstens maximal bis zu".split())
_stemmer = Stemmer.Stemmer("german")


def normalize(text: str) -> str:
    """Lower case, NFKC, and Swiss/German spelling folded (ß -> ss, digit group marks removed)."""
    text = unicodedata.normalize("NFKC", text).lower().replace("ß", "ss")
    return re.sub(r"(?<=\d)['’.,](?=\d{3}\b)", "", text)


def words(text: str) -> list[str]:
    """Content words of a text, lower-cased, stopwords removed, unstemmed."""
    return [w for w in _WORD.findall(normalize(text)) if w not in STOPWORDS]


def tokenize(text: str) -> list[str]:
    """Stemmed content tokens: the terms BM25 indexes and matches."""
    return _stemmer.stemWords(words(text))


class LexicalIndex:
    """BM25 over the stored chunks; scores are raw BM25 (0 = no shared term).

    Rows follow the order chunks were added; a removed chunk leaves an empty row (None in
    ``rows``, score 0) until its segment merges (store/bm25.py). ``apply`` brings the index to
    a newer state of the store by the documents that changed, at a cost in proportion to them.
    """

    def __init__(self, chunks: Sequence[Chunk], fingerprint: str = "") -> None:
        self.fingerprint = fingerprint
        self.rows: list[Chunk | None] = []
        self.position: dict[str, int] = {}  # chunk id -> row
        self._by_source: dict[str, list[int]] = {}
        self._bm25 = Bm25Segments()
        self._append(list(chunks))

    @property
    def chunks(self) -> list[Chunk]:
        """The live chunks, in row order."""
        return [c for c in self.rows if c is not None]

    def __len__(self) -> int:
        return self._bm25.live_rows

    def copy(self) -> LexicalIndex:
        """An independent copy to ``apply`` changes to while searches go on reading this one."""
        other = LexicalIndex([], self.fingerprint)
        other.rows = list(self.rows)
        other.position = dict(self.position)
        other._by_source = {s: list(rows) for s, rows in self._by_source.items()}
        other._bm25 = self._bm25.copy()
        return other

    def apply(self, sources: Sequence[str], chunks: Sequence[Chunk], fingerprint: str) -> None:
        """Replace every chunk of ``sources`` by ``chunks`` (their chunks now; none for a removed
        document) and take the store's new fingerprint."""
        for source in set(sources) | {c.source for c in chunks}:
            for row in self._by_source.pop(source, []):
                chunk = self.rows[row]
                if chunk is not None:
                    self._bm25.remove(row, tokenize(chunk.text) or [""])
                    self.position.pop(chunk.id, None)
                    self.rows[row] = None
        self._renumber(self._bm25.compact_if_sparse())
        self._append(list(chunks))
        self.fingerprint = fingerprint

    def _append(self, chunks: list[Chunk]) -> None:
        start = len(self.rows)
        self.rows.extend(chunks)
        for i, c in enumerate(chunks, start):
            self.position[c.id] = i
            self._by_source.setdefault(c.source, []).append(i)
        self._renumber(self._bm25.add([tokenize(c.text) or [""] for c in chunks]))

    def _renumber(self, first: int | None) -> None:
        """Rows from ``first`` on lost their empty rows in a merge: number them again."""
        if first is None:
            return
        tail = [c for c in self.rows[first:] if c is not None]
        for source, rows in self._by_source.items():
            self._by_source[source] = [r for r in rows if r < first]
        del self.rows[first:]
        self.rows.extend(tail)
        for i, c in enumerate(tail, first):
            self.position[c.id] = i
            self._by_source.setdefault(c.source, []).append(i)

    def scores(self, query: str) -> np.ndarray:
        """Raw BM25 score of every row for the query, aligned with ``self.rows``."""
        return self._bm25.scores([t for t in tokenize(query) if self._bm25.has_term(t)])

    def coverage(self, query: str) -> float:
        """IDF-weighted share of the query's terms that occur anywhere in the index (0..1).

        Near 0 when the query is in a language the documents are not written in: then
        lexical evidence has nothing to say and dense retrieval decides alone.
        """
        toks = tokenize(query)
        n = len(self)
        if not toks or not n:
            return 0.0
        # Unknown terms get the weight of the rarest possible term.
        weights = [np.log(1 + n / max(1, self._bm25.document_frequency(t))) for t in toks]
        found = [w for t, w in zip(toks, weights) if self._bm25.has_term(t)]
        return float(sum(found) / sum(weights))

    def has_term(self, term: str) -> bool:
        return self._bm25.has_term(term)

    def save(self, directory: Path) -> None:
        """Persist the live chunks and the fingerprint; loading recounts BM25 from their text
        (about as long as building it, without the trip that reads every chunk)."""
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / "chunks.jsonl.tmp"
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(json.dumps({"fingerprint": self.fingerprint}) + "\n")
            for c in self.chunks:
                fh.write(json.dumps(c.to_dict(), ensure_ascii=False) + "\n")
        tmp.replace(directory / "chunks.jsonl")

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex | None:
        """The saved index, or None when there is none or it is unreadable."""
        path = directory / "chunks.jsonl"
        if not path.is_file():
            return None
        try:
            with path.open(encoding="utf-8") as fh:
                head = json.loads(fh.readline())
                chunks = [Chunk(**json.loads(line)) for line in fh if line.strip()]
        except (ValueError, TypeError, KeyError) as exc:
            logger.warning("lexical index at %s is unreadable (%s); it will be rebuilt", path, exc)
            return None
        return cls(chunks, fingerprint=str(head.get("fingerprint", "")))
