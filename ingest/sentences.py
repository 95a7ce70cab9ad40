"""Sentence and paragraph spans for German and English text, as exact character offsets."""
from __future__ import annotations

import re

# Words whose trailing period does not end a sentence (German and English, lower case).
ABBREVIATIONS = frozenset(
    """
    z.b zb d.h dh u.a ua bzw ca dr prof nr mio mrd mia tsd usw etc vgl inkl exkl evtl ggf
    sog str st abs art bspw jh jhd mr mrs ms jr sr vs e.g i.e approx no fig etc. al
    jan feb mär apr jun jul aug sep sept okt nov dez dec oct
    """.split()
)

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
# Candidate sentence end: terminal punctuation plus closing quotes/brackets, then whitespace.
_SENTENCE_END = re.compile(r"[.!?…]+[»«\"”“’'\)\]]*(?=\s)|\n")


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each paragraph (blocks separated by blank lines), whitespace trimmed."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for m in _PARAGRAPH_BREAK.finditer(text):
        spans.extend(_trimmed(text, pos, m.start()))
        pos = m.end()
    spans.extend(_trimmed(text, pos, len(text)))
    return spans


def _trimmed(text: str, start: int, end: int) -> list[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return [(start, end)] if end > start else []


def is_abbreviation(text: str, dot: int) -> bool:
    """True when the period at index ``dot`` closes an abbreviation or an ordinal number."""
    j = dot
    while j > 0 and not text[j - 1].isspace():
        j -= 1
    word = text[j:dot].lower().strip("(«»\"'")
    if not word:
        return False
    if word in ABBREVIATIONS or word.rstrip(".") in ABBREVIATIONS:
        return True
    if len(word) == 1 and word.isalpha():  # initials: "J. Smith"
        return True
    if word.isdigit() and len(word) <= 2:  # German ordinals: "am 18. September"
        return True
    return False


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) of each sentence in text[start:end]; offsets index into ``text``."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    pos = start
    for m in _SENTENCE_END.finditer(text, start, end):
        if m.group() != "\n":
            first_dot = m.start()
            if text[first_dot] == "." and is_abbreviation(text, first_dot):
                continue
            nxt = m.end()
            while nxt < end and text[nxt].isspace():
                nxt += 1
            # Lower-case continuation after "." is rarely a new sentence ("5. und ...").
            if nxt < end and text[nxt].islower() and text[first_dot] == ".":
                continue
        spans.extend(_trimmed(text, pos, m.end()))
        pos = m.end()
    spans.extend(_trimmed(text, pos, end))
    return spans
