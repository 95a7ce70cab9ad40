"""BM25 over the stored chunks (German stemming, German and English stopwords), kept on disk."""
from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_GERMAN

from ingest.documents import Chunk

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
    """BM25 over a fixed list of chunks; scores are raw BM25 (0 = no shared term)."""

    def __init__(self, chunks: Sequence[Chunk], fingerprint: str = "") -> None:
        self.chunks = list(chunks)
        self.fingerprint = fingerprint
        self._bm25 = bm25s.BM25()
        corpus = [tokenize(c.text) or [""] for c in self.chunks]
        self._df: dict[str, int] = {}
        for toks in corpus:
            for t in set(toks):
                self._df[t] = self._df.get(t, 0) + 1
        if self.chunks:
            self._bm25.index(corpus, show_progress=False)

    def __len__(self) -> int:
        return len(self.chunks)

    def scores(self, query: str) -> np.ndarray:
        """Raw BM25 score of every chunk for the query, aligned with ``self.chunks``."""
        toks = [t for t in tokenize(query) if t in self._df]
        if not self.chunks or not toks:
            return np.zeros(len(self.chunks), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(toks), dtype=np.float32)

    def coverage(self, query: str) -> float:
        """IDF-weighted share of the query's terms that occur anywhere in the index (0..1).

        Near 0 when the query is in a language the documents are not written in: then
        lexical evidence has nothing to say and dense retrieval decides alone.
        """
        toks = tokenize(query)
        if not toks or not self.chunks:
            return 0.0
        n = len(self.chunks)
        # Unknown terms get the weight of the rarest possible term.
        weights = [np.log(1 + n / self._df.get(t, 1)) for t in toks]
        found = [w for t, w in zip(toks, weights) if t in self._df]
        return float(sum(found) / sum(weights))

    def has_term(self, term: str) -> bool:
        return term in self._df

    def save(self, directory: Path) -> None:
        """Persist the chunk table and fingerprint (the BM25 matrices rebuild in milliseconds)."""
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
