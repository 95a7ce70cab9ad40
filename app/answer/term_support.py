"""Does a passage speak of a question's terms? Stem matches, compounds, and an embedding bridge."""
from __future__ import annotations

import functools
import re
import threading

import numpy as np

from store.embedding import Embedder
from store.lexical import STOPWORDS, normalize, tokenize

_WORD = re.compile(r"[^\W\d_]{2,}")

# Cosine (multilingual-e5-small) above which a single word of the passage is taken to
# translate or restate a question term ("soldiers" ~ "Soldaten" .92, "population" ~
# "Bevölkerung" .88); absent concepts stay below ("tanks" -> .85, "GDP" -> .85).
BRIDGE_THRESHOLD = 0.875


@functools.lru_cache(maxsize=2048)
def _passage_index(passage: str) -> tuple[str, frozenset[str]]:
    """A passage's normalized text and stem set, computed once per passage, not once per term."""
    return normalize(passage), frozenset(tokenize(passage))


class TermSupport:
    """Scores how well a passage covers a question term, across German and English."""

    def __init__(self, embedder: Embedder, threshold: float = BRIDGE_THRESHOLD,
                 max_cache: int = 50_000) -> None:
        self.embedder = embedder
        self.threshold = threshold
        self._cache: dict[str, np.ndarray] = {}
        self._max_cache = max_cache
        self._lock = threading.Lock()

    def _passage_vectors(self, words: list[str]) -> np.ndarray:
        with self._lock:
            missing = [w for w in words if w not in self._cache]
        if missing:
            vecs = self.embedder.embed_passages(missing)
            with self._lock:
                if len(self._cache) > self._max_cache:
                    self._cache.clear()
                self._cache.update(zip(missing, vecs))
        with self._lock:
            return np.stack([self._cache[w] for w in words]) if words else np.zeros((0, 1))

    @staticmethod
    def passage_words(text: str) -> list[str]:
        seen: dict[str, None] = {}
        for w in _WORD.findall(text):
            if normalize(w) not in STOPWORDS:
                seen.setdefault(w, None)
        return list(seen)

    def score(self, term: str, passage: str) -> float:
        """1.0 for a lexical match; otherwise the best word-level embedding similarity."""
        parts = [p for p in re.split(r"[-‐–]", term) if p]
        if len(parts) > 1:
            return min(self.score(p, passage) for p in parts)
        norm_passage, stems = _passage_index(passage)
        term_stems = tokenize(term)
        if term_stems and all(s in stems for s in term_stems):
            return 1.0
        if len(term) >= 4 and normalize(term) in norm_passage:  # compounds: Kampf|flugzeuge
            return 1.0
        words = self.passage_words(passage)
        if not words:
            return 0.0
        head = self._compound_head(normalize(term), words)
        if head is not None:
            # "Atomwaffen" where the passage only says "Waffen": the modifier must be there too.
            return self.score(normalize(term)[: -len(head)], passage)
        return float(np.max(self._passage_vectors(words) @ self._query_vector(term)))

    def _query_vector(self, term: str) -> np.ndarray:
        key = "\x00q:" + term
        with self._lock:
            vec = self._cache.get(key)
        if vec is None:
            vec = self.embedder.embed_queries([term])[0]
            with self._lock:
                self._cache[key] = vec
        return vec

    def prime(self, terms: list[str] | tuple[str, ...], passage: str) -> None:
        """Embed the passage's words and the terms in two batched calls (later scores hit cache)."""
        self._passage_vectors(self.passage_words(passage))
        with self._lock:
            missing = [t for t in dict.fromkeys(terms) if "\x00q:" + t not in self._cache]
        if missing:
            vecs = self.embedder.embed_queries(missing)
            with self._lock:
                self._cache.update(("\x00q:" + t, v) for t, v in zip(missing, vecs))

    @staticmethod
    def _compound_head(term: str, words: list[str]) -> str | None:
        """A passage word that is the tail of the compound ``term`` (>= 4 letters, modifier >= 3)."""
        best = None
        for w in words:
            w = normalize(w)
            if len(w) >= 4 and len(term) - len(w) >= 3 and term.endswith(w):
                best = w if best is None or len(w) > len(best) else best
        return best

    def supported(self, term: str, passage: str) -> bool:
        return self.score(term, passage) >= self.threshold

    def coverage(self, terms: list[str] | tuple[str, ...], passage: str) -> float:
        """Share of the terms the passage supports (1.0 when there are no terms)."""
        if not terms:
            return 1.0
        return sum(self.supported(t, passage) for t in terms) / len(terms)
