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


def _closeness(ev: Evidence, c: Candidate, spans: list[Span]) -> list[tuple[int, float]]:
    """For each span: how many question words it holds (its counted noun: "16.000 Arten" for
    "Baumarten"), and its nearness to the words the sentence shares with the question (each
    shared word counts 1 / (1 + words between))."""
    text = c.sentence.text
    tokens = list(_TOKEN.finditer(text))
    words = frozenset(normalize(w) for w in ev.question.terms)
    anchors = [i for i, m in enumerate(tokens)
               if _anchored(m.group(0), ev.question_stems, words)]
    out = []
    for sp in spans:
        inside = [i for i, m in enumerate(tokens) if sp.start <= m.start() < sp.end]
        if not inside or not anchors:
            out.append((0, 0.0))
            continue
        lo, hi = inside[0], inside[-1]
        named = sum(1 for a in anchors if lo <= a <= hi)
        out.append((named, sum(1.0 / (1 + max(lo - a, a - hi, 0)) for a in anchors)))
    return out


def preferred_spans(ev: Evidence, c: Candidate) -> list[Span]:
    """The open spans of the kind the question type prefers most among those ``c`` offers."""
    spans = open_spans(ev, c)
    if not spans:
        return []
    preference = PREFERENCE.get(ev.answer_type, {})
    best_kind = min(preference.get(s.kind, 9) for s in spans)
    return [s for s in spans if preference.get(s.kind, 9) == best_kind]


def pick_span(ev: Evidence, c: Candidate) -> Span | None:
    """The typed span of ``c`` that answers: not a figure the question itself states, of the
    kind the question type prefers, holding a question word if one does, else closest to the
    words the sentence shares with the question (earliest on a tie)."""
    spans = preferred_spans(ev, c)
    if len(spans) <= 1:
        return spans[0] if spans else None
    scored = _closeness(ev, c, spans)
    best = max(range(len(spans)), key=lambda i: (scored[i][0] > 0, scored[i][0], scored[i][1],
                                                 -spans[i].start))
    return spans[best]


def span_is_clear(ev: Evidence, c: Candidate) -> bool:
    """Is the picked span the only reading of the sentence: the one span of the preferred
    kind, or the only one of them that holds a question word?

    Measured on the dev half of German and English XQuAD (figure questions whose gold
    sentence was a candidate, 2026-12-06): the picked span was right for 80 of 84 sentences with
    one such span, 6 of 8 with several of which one alone holds a question word, and 26 of 47
    with several and none so singled out. For those the whole sentence is the short answer."""
    spans = preferred_spans(ev, c)
    if len(spans) <= 1:
        return True
    return sum(1 for named, _ in _closeness(ev, c, spans) if named > 0) == 1


def typed_answer(ev: Evidence, c: Candidate) -> ShortAnswer | None:
    """The picked typed span as a short answer, clear or not (None when there is none); two
    documents' typed answers are compared for a conflict."""
    span = pick_span(ev, c) if ev.answer_type in FIGURE_TYPES else None
    return None if span is None else span_answer(c, span.start, span.end, "typed")


def short_answer(ev: Evidence, c: Candidate) -> ShortAnswer | None:
    """A typed span for figure questions (None when the sentence has none; the sentence when
    several spans could be the answer), else the sentence."""
    if ev.answer_type not in FIGURE_TYPES:
        return sentence_answer(c)
    typed = typed_answer(ev, c)
    if typed is None:
        return None
    return typed if span_is_clear(ev, c) else sentence_answer(c)
