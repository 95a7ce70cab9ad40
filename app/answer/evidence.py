"""Evidence: the candidate sentences of the retrieved sources, with vectors and figures, built once."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from app.answer.analysis import QuestionInfo, answer_type
from app.answer.spans import Span, spans_for
from app.answer.term_support import TermSupport
from app.citations import Sentence, Source, source_sentences
from store.embedding import Embedder
from store.lexical import tokenize

# Shorter "sentences" are list bullets or stray headings: too short to quote as an answer.
MIN_SENTENCE_CHARS = 12


class SentenceVectors:
    """Passage vectors of sentences, embedded once per text and kept (bounded) for later questions."""

    def __init__(self, embedder: Embedder, max_entries: int = 20_000) -> None:
        self.embedder = embedder
        self.max_entries = max_entries
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def missing(self, texts: list[str]) -> list[str]:
        with self._lock:
            return [t for t in dict.fromkeys(texts) if t not in self._vectors]

    def add(self, known: dict[str, np.ndarray]) -> None:
        """Vectors computed elsewhere (the ones stored at ingest), so they are not embedded again."""
        with self._lock:
            if len(self._vectors) + len(known) > self.max_entries:
                self._vectors.clear()
            self._vectors.update(known)

    def __call__(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            vecs = self.embedder.embed_passages(missing)
            with self._lock:
                if len(self._vectors) + len(missing) > self.max_entries:
                    self._vectors.clear()
                self._vectors.update(zip(missing, vecs))
        with self._lock:
            return np.stack([self._vectors[t] for t in texts])


@dataclass(frozen=True)
class Candidate:
    """One source sentence that might answer the question."""

    sentence: Sentence
    index: int  # position of the sentence within its source chunk
    cos: float  # cosine of the question (query vector) and the sentence (passage vector)
    stems: frozenset[str]
    spans: tuple[Span, ...]  # the typed spans that fit the question's answer type
    support: float = 0.0  # mean over the question's terms of their best match in the sentence
    term_scores: tuple[float, ...] = ()  # each question term's match in the sentence
    focus: float = 1.0  # the match of what the question counts or asks about (1 when none)


@dataclass
class Evidence:
    """Everything the later steps read about one question and its sources."""

    question: QuestionInfo
    answer_type: str
    sources: list[Source]
    candidates: list[Candidate]
    vectors: np.ndarray  # one passage vector per candidate
    question_stems: frozenset[str]
    top_dense: float  # the best chunk's dense score from retrieval
    chunk_stems: dict[int, frozenset[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.candidates)


def build_evidence(q: QuestionInfo, sources: list[Source], query_vec: np.ndarray,
                   vectors: SentenceVectors, top_dense: float,
                   support: TermSupport | None = None) -> Evidence:
    """Split the sources into sentences once, embed them (cached) and type their spans.

    With ``support``, each candidate also gets the mean term support of the question's
    content words (a stem or compound match is 1, otherwise the best word-embedding cosine):
    the one lexical signal that crosses languages.
    """
    atype = answer_type(q.text)
    sentences = [s for s in source_sentences(sources) if len(s.text) >= MIN_SENTENCE_CHARS]
    dim = int(query_vec.shape[0])
    vecs = vectors([s.text for s in sentences]) if sentences else np.zeros((0, dim))
    cos = vecs @ query_vec if sentences else np.zeros(0)
    terms = [t for t in q.terms if t]
    if support is not None and terms and sentences:
        support.prime(terms + ([q.focus] if q.focus else []),
                      "\n".join(src.chunk.text for src in sources))
    position: dict[int, int] = {}
    candidates = []
    for s, c in zip(sentences, cos):
        index = position.get(s.n, 0)
        position[s.n] = index + 1
        scores = tuple(support.score(t, s.text) for t in terms) if support is not None else ()
        focus = support.score(q.focus, s.text) if support is not None and q.focus else 1.0
        candidates.append(Candidate(s, index, float(c), frozenset(tokenize(s.text)),
                                    tuple(spans_for(s.text, atype)),
                                    sum(scores) / len(scores) if scores else 0.0, scores, focus))
    chunk_stems = {src.n: frozenset(tokenize(src.chunk.text)) for src in sources}
    return Evidence(q, atype, sources, candidates, vecs, frozenset(tokenize(q.text)), top_dense,
                    chunk_stems)
