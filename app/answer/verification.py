"""Verification: every statement not copied verbatim is attributed to a source span or rejected."""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.answer.analysis import content_terms
from app.answer.claim_check import claim_problems, figures_in_one_sentence, unsupported_figures
from app.answer.term_support import TermSupport
from app.citations import Citation, Sentence, Source, markers, source_sentences, strip_markers
from store.embedding import Embedder

logger = logging.getLogger(__name__)

# A statement without figures needs a source sentence at least this similar (e5 cosine).
CLAIM_MIN_SIMILARITY = 0.80
# A statement whose figures all occur in the span may be a looser paraphrase of it.
FIGURE_SIMILARITY_SLACK = 0.05
# Share of a statement's content words its span must support. Off: the claim checks
# (app.answer.claim_check) carry the precision instead. Dev claim benchmark: the old .5 rejected 51
# of 125 faithful paraphrases (most of them German/English translations). With the claim checks
# (measured at BA .915): 0 BA .915; .15 BA .903 (5 faithful claims more rejected, 3 perturbed more
# caught); .25 BA .866.
CLAIM_MIN_COVERAGE = 0.0
# How many of the most similar spans the claim checks may try before the statement is rejected.
# Dev (at BA .915): 1 span BA .915 (unsupported recall .919); 3 spans BA .907 (.893): the 2nd and 3rd
# spans mostly lent a borrowed figure or a sentence without the claim's negation.
CHECKED_SPANS = 1
# A statement with figures whose best span holding them is this much less similar than the most
# similar sentence of all has borrowed its figure from another sentence. Dev: 0 of 61 supported
# statements with figures had any gap, 4 of 15 borrowed figures .011-.046; 0 and .005 gave the same
# figures, .02 let 2 more through, no margin 5.
FIGURE_BORROW_MARGIN = 0.005
# A statement with at most this many content words is a fragment ("2000 [1]", "41 Jahre").
FRAGMENT_WORDS = 1
# Words that only carry a figure's unit; they do not count as the statement's content.
UNIT_WORDS = frozenset(
    "year years old jahre jahren jahr alt dollar dollars us-dollar usd euro eur million millions "
    "millionen billion billions milliarden mrd mio percent prozent per cent".split())



# Words that open a sentence continuing the one before (a pronoun, a demonstrative, a linking adverb).
_BACK_REFERENCES = frozenset(
    "it they this these those that he she its their there but however also so thus among including "
    "es sie er dies diese dieser dieses das darunter dabei davon dafür dazu damit doch aber so deshalb "
    "daher allerdings zudem außerdem ausserdem auch dann danach".split())


def _refers_back(sentence: str) -> bool:
    first = re.match(r"\W*([^\W\d_]+)", sentence)
    return bool(first) and first.group(1).lower() in _BACK_REFERENCES


@dataclass
class Verdict:
    """One generated sentence after verification."""

    text: str
    shown: bool
    citation: Citation | None = None
    problem: str = ""


@dataclass
class Verifier:
    """Attributes each generated sentence to the source span that supports it, or rejects it."""

    embedder: Embedder
    sources: list[Source]
    min_similarity: float = CLAIM_MIN_SIMILARITY
    passage_vectors: Callable[[list[str]], np.ndarray] | None = None  # a cache, when available
    support: TermSupport | None = None  # when given, a span must also speak of the claim's words
    answer_sentences: list[Sentence] = field(default_factory=list)  # best for the question
    _sentences: list[Sentence] = field(default_factory=list)
    _vectors: np.ndarray | None = None

    def __post_init__(self) -> None:
        self._sentences = [s for s in source_sentences(self.sources) if len(s.text) >= 8]
        if self._sentences:
            embed = self.passage_vectors or self.embedder.embed_passages
            self._vectors = embed([s.text for s in self._sentences])

    def _spans(self) -> Iterator[tuple[int, int]]:
        """Candidate quotes: single sentences, then adjacent pairs within one source."""
        n = len(self._sentences)
        for i in range(n):
            yield i, i
        for i in range(n - 1):
            if self._sentences[i].n == self._sentences[i + 1].n:
                yield i, i + 1

    def check(self, sentence: str) -> Verdict:
        """Show the sentence with the citation of the span that supports it, or reject it."""
        from app.figures import extract_figures

        claim = strip_markers(sentence)
        if self._vectors is None or not claim.strip(" .,;:!?"):
            return Verdict(sentence, False, problem="empty")
        figures = extract_figures(claim)
        if len(content_terms(claim)) <= FRAGMENT_WORDS:
            return self._check_fragment(sentence, claim, figures)
        cited = set(markers(sentence))
        sims = self._vectors @ self.embedder.embed_queries([claim])[0]
        candidates: list[tuple[float, int, int]] = []
        for i, j in self._spans():
            if figures and not self._holds_figures(claim, i, j):
                continue
            candidates.append((self._score(sims, cited, i, j), i, j))
        if any(i == j for _, i, j in candidates):  # a pair only when no one sentence will do
            candidates = [c for c in candidates if c[1] == c[2]]
        if not candidates:
            missing = ", ".join(f.text for f in unsupported_figures(claim, "\n".join(
                s.text for s in self._sentences)) or figures)
            return Verdict(sentence, False, problem=f"figure not in the sources: {missing}")
        candidates.sort(reverse=True)
        floor = self.min_similarity - (FIGURE_SIMILARITY_SLACK if figures else 0.0)
        if candidates[0][0] < floor:
            return Verdict(sentence, False, problem="no source sentence supports this statement")
        if figures and float(sims.max()) - float(max(sims[candidates[0][1]], sims[candidates[0][2]])) \
                > FIGURE_BORROW_MARGIN:
            return Verdict(sentence, False, problem="the figure stands in a sentence about something else")
        terms = [t for t in content_terms(claim) if t not in UNIT_WORDS]
        first_problem = ""
        for score, i, j in candidates[:CHECKED_SPANS]:  # the most similar spans, best first
            if score < floor:
                break
            problem = self._problem(claim, terms, i, j)
            if not problem:
                return self._shown(claim, i, j)
            if i == j and problem.startswith(("entity:", "time")):
                # a name may stand in the sentence a follow-up sentence points back to
                # ("... an Russland geliefert. Darunter ... 15'000 Soldaten")
                for a, b in ((i - 1, i), (i, i + 1)):
                    if 0 <= a and b < len(self._sentences) and self._sentences[a].n == self._sentences[b].n \
                            and _refers_back(self._sentences[b].text) \
                            and (not figures or self._holds_figures(claim, a, b)) \
                            and not self._problem(claim, terms, a, b):
                        return self._shown(claim, a, b)
            first_problem = first_problem or problem
        return Verdict(sentence, False, problem=first_problem)

    def _score(self, sims: np.ndarray, cited: set[int], i: int, j: int) -> float:
        return float(max(sims[i], sims[j])) + (0.02 if self._sentences[i].n in cited
                                               else 0.0) - (0.01 if j > i else 0.0)

    def _holds_figures(self, claim: str, i: int, j: int) -> bool:
        if unsupported_figures(claim, self._quote(i, j)):
            return False
        return i == j or figures_in_one_sentence(claim, [self._sentences[i].text, self._sentences[j].text])

    def _problem(self, claim: str, terms: list[str], i: int, j: int) -> str:
        """Why the span i..j does not support the claim; empty when it does."""
        quote = self._quote(i, j)
        covered = self._coverage(terms, quote) if CLAIM_MIN_COVERAGE > 0 else 1.0
        if covered < CLAIM_MIN_COVERAGE:
            return f"the cited passage speaks of only {covered:.0%} of this statement's words"
        problems = claim_problems(claim, quote, self.support,
                                  checks=("clock", "units", "polarity", "entities", "roles"))
        return problems[0] if problems else ""

    def _check_fragment(self, sentence: str, claim: str, figures: list[Any]) -> Verdict:
        """A terse answer ("2000 [1]") is read with the question: its figures must stand, as
        figures of the same kind and value, in the sentence that best answers the question."""
        if not figures or not self.answer_sentences:
            return Verdict(sentence, False, problem="a fragment without a checkable figure")
        top = self.answer_sentences[0]
        index = {(s.source, s.start): k for k, s in enumerate(self._sentences)}
        k = index.get((top.source, top.start))
        if k is None or unsupported_figures(claim, top.text):
            return Verdict(sentence, False,
                           problem="figure not in the passage that best answers this")
        return self._shown(claim, k, k)

    def _coverage(self, terms: list[str], quote: str) -> float:
        if self.support is None:
            return 1.0
        self.support.prime(terms, quote)
        return self.support.coverage(terms, quote)

    def _shown(self, claim: str, i: int, j: int) -> Verdict:
        first, last = self._sentences[i], self._sentences[j]
        citation = Citation(first.n, first.source, first.start, last.end, self._quote(i, j))
        return Verdict(f"{claim.rstrip()} [{first.n}]", True, citation)

    def _quote(self, i: int, j: int) -> str:
        if i == j:
            return self._sentences[i].text
        # Adjacent sentences of one chunk: rebuild the exact document span from the chunk.
        first, last = self._sentences[i], self._sentences[j]
        src = next(s for s in self.sources if s.n == first.n)
        return src.chunk.text[first.start - src.chunk.start:last.end - src.chunk.start]
