"""The previous hand-tuned gate and sentence ranking, kept only to be measured against (calibrate)."""
from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass

import numpy as np

from app.answer.analysis import QuestionInfo, content_terms
from app.answer.evidence import SentenceVectors
from app.answer.term_support import TermSupport
from app.citations import Citation, Sentence, Source, citation_for, source_sentences
from store.embedding import Embedder

logger = logging.getLogger(__name__)

# Below this cosine (multilingual-e5-small) the best chunk is off-topic for the question.
DENSE_MIN = 0.75
# An answer needs at least this share of the question's content terms in its sources.
COVERAGE_MIN = 0.3
_STATEMENT_END = re.compile(r"[.!?…][»«\"”“’')\]]*$")


# The first version's reading of a question, frozen with its ranking (the library's question
# analysis no longer carries these word lists).
_NUMERIC = re.compile(
    r"\b(how (many|much|old|long|large|big|high)|what (percentage|share|proportion|number|amount|"
    r"sum|value|year|age)|in what year|which year|when|wie (viele?|alt|lange|hoch|gross|groß)|"
    r"welche[nrs]? (betrag|anzahl|summe|wert|jahr)|in welchem jahr|wann|seit wann|wieviele?|"
    r"population|einwohner\w*|bevölkerungszahl|anzahl|number of|how much money)\b", re.I)
_OLD_FOCUS = [
    re.compile(r"\bhow many ((?:[\w'’-]+ ){0,3}?[\w'’-]+?)\s+(?:do|does|did|have|has|had|"
               r"is|are|was|were|will|would|can|could|in|of|to|for|from|fought|died|live)\b", re.I),
    re.compile(r"\b(?i:wie viele) ((?:[a-zäöü][\wäöüß-]*(?:e|en|er|es|em) ){0,2}[A-ZÄÖÜ][\wäöüß-]*)"),
    re.compile(r"\b(population|einwohner\w*|bevölkerungszahl|inhabitants)\b", re.I),
    re.compile(r"\bwie (?:hoch|gross|groß) (?:ist|war|sind|waren) (?:der|die|das) ([\wäöüß-]+)",
               re.I),
]
_OLD_GENERIC = frozenset("people menschen leute mal times total gesamt insgesamt".split())
_WHEN = re.compile(r"\b(when|what year|which year|in what year|wann|seit wann|in welchem jahr|"
                   r"welches jahr)\b", re.I)
_AGE = re.compile(r"\b(how old|wie alt|what age|welches alter)\b", re.I)
_PERCENT = re.compile(r"\b(percent|percentage|per cent|prozent|anteil|share)\b", re.I)


@dataclass(frozen=True)
class OldReading:
    """What the first version read from a question: figure wanted, its kinds, the focus."""

    terms: tuple[str, ...]
    numeric: bool
    focus: str | None
    figure_kinds: frozenset[str] | None


def old_reading(q: QuestionInfo) -> OldReading:
    text = q.text
    m = re.search(r"\b(?:how old|wie alt) (?:is|was|ist|war|sind|waren) ([\w' -]+)", text, re.I)
    if m and content_terms(m.group(1)):
        focus = content_terms(m.group(1))[0]
    else:
        focus = None
        for pattern in _OLD_FOCUS:
            found = pattern.search(text)
            words = [w for w in content_terms(found.group(1)) if w not in _OLD_GENERIC] \
                if found else []
            if words:
                focus = words[-1]
                break
    kinds = (frozenset({"age", "amount"}) if _AGE.search(text) else
             frozenset({"year"}) if _WHEN.search(text) else
             frozenset({"percent"}) if _PERCENT.search(text) else None)
    return OldReading(q.terms, bool(_NUMERIC.search(text)), focus, kinds)


@functools.lru_cache(maxsize=4096)
def figure_kinds(text: str) -> frozenset[str]:
    """The kinds of figures in a text ('amount', 'year', 'age', ...); empty when none."""
    from app.figures import extract_figures

    return frozenset(f.kind for f in extract_figures(text))


def has_figure(text: str, kinds: frozenset[str] | None = None) -> bool:
    found = figure_kinds(text)
    return bool(found & kinds) if kinds else bool(found)


def figure_near(text: str, term: str, kinds: frozenset[str] | None, window: int = 40) -> bool:
    """Is a figure (of the wanted kinds) within ``window`` characters after a mention of term?"""
    from app.figures import extract_figures

    low = text.lower()
    mentions = [m.end() for m in re.finditer(re.escape(term.lower()), low)]
    if not mentions:
        return False
    for f in extract_figures(text):
        if kinds and f.kind not in kinds:
            continue
        if any(0 <= f.start - end <= window for end in mentions):
            return True
    return False


@dataclass(frozen=True)
class Judgement:
    """Whether the sources answer the question, why, and the sentences ranked best first."""

    answerable: bool
    reason: str
    ranked: list[tuple[Sentence, float]]


class ExtractiveAnswerer:
    """Ranks source sentences against a question; refuses when the sources do not support it."""

    def __init__(self, embedder: Embedder, support: TermSupport | None = None,
                 dense_min: float = DENSE_MIN, coverage_min: float = COVERAGE_MIN) -> None:
        self.embedder = embedder
        self.support = support or TermSupport(embedder)
        self.dense_min = dense_min
        self.coverage_min = coverage_min
        self.sentence_vectors = SentenceVectors(embedder)

    def judge(self, q: QuestionInfo, sources: list[Source], query_vec: np.ndarray,
              top_dense: float) -> Judgement:
        """Gate and rank. Deterministic: the same question and sources give the same result."""
        return self._judge(old_reading(q), sources, query_vec, top_dense)

    def _judge(self, q: OldReading, sources: list[Source], query_vec: np.ndarray,
               top_dense: float) -> Judgement:
        sentences = [s for s in source_sentences(sources) if len(s.text) >= 12]
        if not sentences:
            return Judgement(False, "no sources", [])
        if top_dense < self.dense_min:
            return Judgement(False, f"best source similarity {top_dense:.3f} < {self.dense_min}",
                             [])
        context = "\n".join(s.chunk.text for s in sources)
        parts = [p for t in q.terms for p in re.split(r"[-‐–]", t) if p]
        self.support.prime(parts + ([q.focus] if q.focus else []), context)
        if q.focus and not self.support.supported(q.focus, context):
            return Judgement(False, f"the sources never mention '{q.focus}'", [])
        coverage = self.support.coverage(q.terms, context)
        if coverage < self.coverage_min:
            return Judgement(False, f"the sources cover {coverage:.0%} of the question's terms", [])
        cos = self.sentence_vectors([s.text for s in sentences]) @ query_vec
        scored = []
        for s, c in zip(sentences, cos):
            score = float(c) + 0.04 * self.support.coverage(q.terms, s.text)
            if not _STATEMENT_END.search(s.text):  # a heading states nothing
                score -= 0.02
            if q.focus:
                score += 0.03 * self.support.supported(q.focus, s.text)
            if q.numeric:
                score += 0.02 if has_figure(s.text, q.figure_kinds) else -0.05
                if q.focus and figure_near(s.text, q.focus, q.figure_kinds):
                    score += 0.03
            scored.append((s, score))
        scored.sort(key=lambda x: -x[1])
        best = scored[0][0].text
        if q.numeric and not has_figure(best, q.figure_kinds):
            return Judgement(False, "the question asks for a figure and the best passage has none",
                             scored)
        if q.figure_kinds and "age" in q.figure_kinds and q.focus and \
                not figure_near(best, q.focus, q.figure_kinds):
            return Judgement(False, f"no age is given next to '{q.focus}'", scored)
        if q.numeric and q.focus and not self.support.supported(q.focus, best):
            return Judgement(False, f"the passage with a figure does not speak of '{q.focus}'",
                             scored)
        return Judgement(True, "ok", scored)

    @staticmethod
    def select(judgement: Judgement, margin: float = 0.006, limit: int = 2) -> list[Sentence]:
        """The best sentence, plus close runners-up that say something else."""
        if not judgement.answerable or not judgement.ranked:
            return []
        best_score = judgement.ranked[0][1]
        chosen = [judgement.ranked[0][0]]
        for s, score in judgement.ranked[1:]:
            if len(chosen) >= limit or score < best_score - margin:
                break
            if all(s.text != c.text for c in chosen):
                chosen.append(s)
        return sorted(chosen, key=lambda s: (s.n, s.start))

    @staticmethod
    def render(sentences: list[Sentence], language: str) -> tuple[str, list[Citation]]:
        """Answer text quoting the sentences, each marked [n], and their citations."""
        citations = [citation_for(s) for s in sentences]
        if language == "de":
            body = " ".join(f"„{s.text}“ [{s.n}]" for s in sentences)
            return f"Laut den Quellen: {body}", citations
        body = " ".join(f"\"{s.text}\" [{s.n}]" for s in sentences)
        return f"The sources say: {body}", citations
