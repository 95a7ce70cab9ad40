"""The short answer: the exact span of the chosen sentence that answers the question."""
from __future__ import annotations

import re
from dataclasses import dataclass

from app.answer.analysis import FIGURE_TYPES
from app.answer.evidence import Candidate, Evidence
from app.answer.spans import PREFERENCE, Span
from app.figures import extract_figures
from store.lexical import normalize, tokenize

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


@dataclass(frozen=True)
class ShortAnswer:
    """``text == document.text[start:end]`` of source ``source`` (cited as [n])."""

    text: str
    n: int
    source: str
    start: int
    end: int
    method: str  # 'typed' (a figure, date or duration span), 'sentence', or 'copied' (by the model)

    def to_dict(self) -> dict[str, object]:
        return {"text": self.text, "n": self.n, "source": self.source, "start": self.start,
                "end": self.end, "method": self.method}


def sentence_answer(c: Candidate) -> ShortAnswer:
    s = c.sentence
    return ShortAnswer(s.text, s.n, s.source, s.start, s.end, "sentence")


def span_answer(c: Candidate, start: int, end: int, method: str) -> ShortAnswer:
    """The span [start, end) of the candidate's sentence, as document offsets."""
    s = c.sentence
    return ShortAnswer(s.text[start:end], s.n, s.source, s.start + start, s.start + end, method)


def _anchored(token: str, question_stems: frozenset[str], question_words: frozenset[str]) -> bool:
    """Does a sentence word speak of a question word: the same stem, or one word is the head
    of the other's compound ("Arten" in "Baumarten")? Heads need 4 letters, so a stray
    ending never counts."""
    if any(stem in question_stems for stem in tokenize(token)):
        return True
    word = normalize(token).strip(".,;:!?()[]\"'„“”«»")
    return len(word) >= 4 and any(len(q) > len(word) and q.endswith(word) or
                                  len(word) > len(q) >= 4 and word.endswith(q)
                                  for q in question_words)


def _values(text: str) -> frozenset[float]:
    return frozenset(f.value for f in extract_figures(text))


def open_spans(ev: Evidence, c: Candidate) -> list[Span]:
    """The candidate's typed spans that are not figures the question itself states, by their
    words or by their value ("drei Schichten" when the question says "3 Schichten")."""
    asked = normalize(ev.question.text)
    stated = _values(ev.question.text)
    return [s for s in c.spans if normalize(s.text) not in asked
            and not (s.kind in ("figure", "duration") and _values(s.text) & stated)]


def pick_span(ev: Evidence, c: Candidate) -> Span | None:
    """The typed span of ``c`` that answers: not a figure the question itself states, of the
    kind the question type prefers, and closest to the words the sentence shares with the
    question (each shared word counts by its nearness, 1 / (1 + words between))."""
    spans = open_spans(ev, c)
    if not spans:
        return None
    preference = PREFERENCE.get(ev.answer_type, {})
    best_kind = min(preference.get(s.kind, 9) for s in spans)
    spans = [s for s in spans if preference.get(s.kind, 9) == best_kind]
    if len(spans) == 1:
        return spans[0]
    text = c.sentence.text
    tokens = list(_TOKEN.finditer(text))
    words = frozenset(normalize(w) for w in ev.question.terms)
    anchors = [i for i, m in enumerate(tokens)
               if _anchored(m.group(0), ev.question_stems, words)]
    if not anchors:
        return spans[0]

    def closeness(sp: Span) -> float:
        inside = [i for i, m in enumerate(tokens) if sp.start <= m.start() < sp.end]
        if not inside:
            return 0.0
        lo, hi = inside[0], inside[-1]
        # A question word inside the span (its counted noun: "16.000 Arten" for "Baumarten")
        # outweighs any nearness; each such word counts as much as all nearness can.
        named = sum(1 for a in anchors if lo <= a <= hi) * len(anchors)
        return named + sum(1.0 / (1 + max(lo - a, a - hi, 0)) for a in anchors)

    return max(spans, key=lambda sp: (closeness(sp), -sp.start))


def short_answer(ev: Evidence, c: Candidate) -> ShortAnswer | None:
    """A typed span for figure questions (None when the sentence has none), else the sentence."""
    if ev.answer_type in FIGURE_TYPES:
        span = pick_span(ev, c)
        return None if span is None else span_answer(c, span.start, span.end, "typed")
    return sentence_answer(c)
