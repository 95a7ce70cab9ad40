"""Typed spans in a sentence: figures with their unit word, dates, weekdays and durations."""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from app.figures import extract_figures

_MONTHS = (r"Januar|Jänner|Februar|März|April|Mai|Juni|Juli|August|September|Oktober|November|"
           r"Dezember|January|February|March|May|June|July|October|December|"
           r"Jan|Feb|Mär|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Okt|Oct|Nov|Dez|Dec")
_WEEKDAYS = (r"Montag|Dienstag|Mittwoch|Donnerstag|Freitag|Samstag|Sonnabend|Sonntag|"
             r"Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday")
_DATE = re.compile(
    rf"\b(\d{{1,2}}\.\s?(?:{_MONTHS})\.?(?:\s\d{{4}})?|(?:{_MONTHS})\.?\s\d{{1,2}}(?:st|nd|rd|th)?"
    rf"(?:,\s?\d{{4}})?|\d{{1,2}}(?:st|nd|rd|th)?\s(?:of\s)?(?:{_MONTHS})(?:\s\d{{4}})?|"
    rf"(?:{_MONTHS})\s\d{{4}}|\d{{1,2}}\.\d{{1,2}}\.\d{{2,4}}|\d{{4}}-\d{{2}}-\d{{2}}|"
    rf"(?:{_WEEKDAYS}))\b")
_CLOCK = re.compile(r"\b\d{1,2}[:.]\d{2}\s?(?:Uhr|h|a\.m\.|p\.m\.|am|pm)?(?=\W|$)|\b\d{1,2}\s?Uhr\b")
_DURATION_UNITS = (r"Sekunden?|Minuten?|Stunden?|Tagen?|Tage|Wochen?|Monaten?|Monate|Jahren?|"
                   r"Jahre|Werktagen?|Werktage|Arbeitstagen?|Arbeitstage|Betriebsstunden|"
                   r"seconds?|minutes?|hours?|days?|weeks?|months?|years?|working days?|"
                   r"business days?|operating hours?")
_DURATION_TAIL = re.compile(rf"\s?(?:{_DURATION_UNITS})\b")
# A unit right after a number ("45 °C", "12 kW", "3 bar"), or a capitalised word: German
# writes the counted noun that way ("2000 Soldaten"). Lower-case words are left out, since
# they are as often a verb or a conjunction ("2000 stieg", "1991 und") as a noun.
_UNIT_TAIL = re.compile(r"\s?(?:°\s?[CF]\b|[°%‰]|(?:kWh|kW|MW|GW|Wh|W|V|A|Hz|bar|Pa|km|cm|mm|m|kg|g|"
                        r"t|l|ml|dB|m²|m³|km/h)(?![\wÄÖÜäöüß])|[A-ZÄÖÜ][\wÄÖÜäöüß/²³-]*)")


@dataclass(frozen=True)
class Span:
    """A typed answer candidate: text[start:end] of the sentence, and what it is."""

    start: int
    end: int
    kind: str  # 'figure', 'year', 'date', 'clock', 'duration'
    text: str


def _figure_spans(text: str) -> list[Span]:
    out = []
    for f in extract_figures(text):
        end = f.end
        tail = _UNIT_TAIL.match(text, end)
        if tail and f.unit is None:
            end = tail.end()
        kind = "duration" if _DURATION_TAIL.match(text, f.end) else (
            "year" if f.kind == "year" else "figure")
        if kind == "duration":
            end = max(end, _DURATION_TAIL.match(text, f.end).end())  # type: ignore[union-attr]
        out.append(Span(f.start, end, kind, text[f.start:end]))
    return out


@functools.lru_cache(maxsize=8192)
def typed_spans(text: str) -> tuple[Span, ...]:
    """Every figure (with its unit word), date, weekday, clock time and duration in ``text``."""
    spans = [Span(m.start(), m.end(), "date", m.group(0)) for m in _DATE.finditer(text)]
    spans += [Span(m.start(), m.end(), "clock", m.group(0)) for m in _CLOCK.finditer(text)]
    for s in _figure_spans(text):
        if not any(o.start <= s.start < o.end for o in spans):
            spans.append(s)
    return tuple(sorted(spans, key=lambda s: (s.start, -s.end)))


# Which span kinds can answer which question type.
_KINDS_FOR = {
    "time": frozenset({"date", "year", "clock", "figure", "duration"}),
    "duration": frozenset({"duration", "figure", "date", "year"}),
    "quantity": frozenset({"figure", "duration"}),
    "percent": frozenset({"figure"}),
    "age": frozenset({"figure"}),
}


# Within the kinds that fit, the ones a question of the type most likely asks for (lower first).
PREFERENCE = {
    "time": {"date": 0, "year": 0, "clock": 1, "duration": 2, "figure": 3},
    "duration": {"duration": 0, "date": 1, "year": 2, "figure": 2},
}


def spans_for(text: str, answer_type: str) -> list[Span]:
    """The typed spans of ``text`` that can answer a question of ``answer_type``."""
    kinds = _KINDS_FOR.get(answer_type)
    if kinds is None:
        return []
    out = [s for s in typed_spans(text) if s.kind in kinds]
    if answer_type == "percent":
        out = [s for s in out if re.search(r"%|prozent|percent|per cent", s.text, re.I)]
    return out
