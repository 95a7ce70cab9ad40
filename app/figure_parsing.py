"""Scan text for single figures: masked spans, number formats, scales, units and kinds."""

# The rules implemented here are documented at the top of app/figures.py.

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from app.figure_vocab import (
    _AGE_PREFIX,
    _CITATION,
    _CURRENCIES,
    _DATES,
    _ENGLISH_WORDS,
    _FALSE_FRIENDS,
    _GERMAN_WORDS,
    _HEDGE_BEFORE,
    _LIST_MARKER,
    _NAME_COMMA,
    _NAME_PAREN,
    _NEEDS_SCALE,
    _NUMBER_WORDS,
    _ORDINAL_CUES,
    _PLAIN_DECIMAL_TOKEN,
    _PLAIN_INT,
    _PREV_WORD,
    _SCALES,
    _SPACES,
    _TIME,
    _UNIT_RULES,
    _YEAR_CUES,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Figure:
    """One figure found in a text; `value` is fully scaled and signed."""

    value: float
    unit: str | None
    kind: str
    text: str
    start: int
    end: int
    approximate: bool = False
    hedge: str | None = None
    low: float | None = None
    high: float | None = None
    scale: float | None = None

    @property
    def is_range(self) -> bool:
        """True when this figure is one end of a range."""
        return self.low is not None


@dataclass(frozen=True)
class _Context:
    text: str
    masks: list[tuple[int, int]]
    decimal_mark: str | None
    german: bool


def _scan_masks(text: str) -> tuple[list[tuple[int, int]], list[Figure]]:
    """Spans that hold no figure of their own, plus the year figures of dates."""
    masks: list[tuple[int, int]] = []
    years: list[Figure] = []
    masks.extend(m.span() for m in _CITATION.finditer(text))
    for pattern in _DATES:
        for m in pattern.finditer(text):
            if _overlaps(masks, *m.span()):
                continue
            masks.append(m.span())
            year = m.group("year")
            if year and len(year) == 4:
                s, e = m.span("year")
                years.append(Figure(float(year), "year", "year", year, s, e))
    for pattern in (_LIST_MARKER, _TIME):
        masks.extend(m.span() for m in pattern.finditer(text))
    return masks, years


def _overlaps(masks: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(s < end and start < e for s, e in masks)


def _guess_lang(text: str) -> str | None:
    """'de' or 'en' by counting common function words; None when undecided."""
    words = re.findall(r"[a-zäöüß]+", text.lower())
    de = sum(w in _GERMAN_WORDS for w in words)
    en = sum(w in _ENGLISH_WORDS for w in words)
    if de == en:
        return None
    return "de" if de > en else "en"


def _decimal_mark(text: str, masks: list[tuple[int, int]], hint: str | None) -> str | None:
    """The decimal mark this text uses, from the hint or its unambiguous numbers."""
    if hint in ("de", "en"):
        return "," if hint == "de" else "."
    votes: set[str] = set()
    for m in _PLAIN_DECIMAL_TOKEN.finditer(text):
        if not _overlaps(masks, *m.span()):
            vote = _unambiguous_decimal(m.group())
            if vote:
                votes.add(vote)
    return votes.pop() if len(votes) == 1 else None


def _unambiguous_decimal(token: str) -> str | None:
    seps = [c for c in token if c in ".,"]
    if len(set(seps)) == 2:
        return seps[-1]
    if len(seps) > 1:
        return "," if seps[0] == "." else "."
    head, tail = re.split(r"[.,]", token)
    if len(tail) != 3 or head == "0" or len(head) > 3:
        return seps[0]
    return None


def _parse_number(raw: str, decimal_mark: str | None) -> float:
    """Numeric value of a digit string in any supported format."""
    spaced = any(c in raw for c in "'’" + _SPACES)
    s = "".join(c for c in raw if c not in "'’" + _SPACES)
    seps = [c for c in s if c in ".,"]
    if not seps:
        return float(s)
    if len(set(seps)) == 2:
        decimal = seps[-1]
    elif len(seps) > 1:
        decimal = None
    else:
        decimal = _single_separator_role(s, seps[0], spaced, decimal_mark)
    if decimal is None:
        return float(s.replace(seps[0], ""))
    grouping = "." if decimal == "," else ","
    return float(s.replace(grouping, "").replace(decimal, "."))


def _single_separator_role(s: str, sep: str, spaced: bool, decimal_mark: str | None) -> str | None:
    """`sep` when the lone separator is a decimal mark, None when it groups thousands."""
    head, tail = s.split(sep)
    if spaced or len(tail) != 3 or head == "0" or not 1 <= len(head) <= 3:
        return sep
    if decimal_mark is not None:
        return sep if sep == decimal_mark else None
    return None


def _normalise_unit(word: str | None) -> str | None:
    if not word:
        return None
    low = word.lower()
    return next((norm for key, norm in _UNIT_RULES if key in low), None)


def _scale_factor(word: str | None, german: bool) -> float | None:
    if not word:
        return None
    key = word.rstrip(".")
    lower = key.lower()
    if lower in _FALSE_FRIENDS:
        english, german_value = _FALSE_FRIENDS[lower]
        return german_value if german and key != lower else english
    return _SCALES.get(lower)


def _hedge_before(text: str, start: int) -> str | None:
    m = _HEDGE_BEFORE.search(text[max(0, start - 40):start])
    if not m:
        return None
    return (m.group("h") or m.group("t")).lower()


def _prev_word(text: str, start: int) -> str:
    m = _PREV_WORD.search(text[max(0, start - 40):start])
    return m.group(1).lower() if m else ""


def _build(m: re.Match[str], ctx: _Context) -> Figure | None:
    """Turn one regex match into a Figure, or None when it is not a figure."""
    text = ctx.text
    core = "num" if m.group("num") else "word"
    core_start, core_end = m.span(core)
    if _overlaps(ctx.masks, core_start, core_end):
        return None
    start, end = m.start(), m.end()
    if core == "num" and not m.group("cur") and _glued_identifier(text, core_start):
        log.debug("identifier, not a figure: %r", text[max(0, core_start - 4):core_end])
        return None

    currency = _normalise_unit(m.group("cur"))
    unit = currency or _normalise_unit(m.group("unit"))
    scale_word = m.group("scale") or m.group("gscale")
    if m.group("gscale") in ("m", "M") and unit not in _CURRENCIES:
        scale_word, unit, end = None, None, core_end
    factor = _scale_factor(scale_word, ctx.german)

    if core == "word":
        word = m.group("word").lower()
        if word in _NEEDS_SCALE and not _singular_scale(scale_word):
            return None  # "eine Milliarde" is a figure, "ein Millionen-Deal" is not
        base = float(_NUMBER_WORDS[word])
    else:
        base = _parse_number(m.group("num"), ctx.decimal_mark)
        if _negative(text, start):
            base, start = -base, start - 1

    hedge = _hedge_before(text, start)
    kind, unit, end = _classify(m, ctx, base, unit, factor, hedge, start, end)
    return Figure(
        value=base * (factor or 1.0),
        unit=unit,
        kind=kind,
        text=text[start:end],
        start=start,
        end=end,
        approximate=hedge is not None,
        hedge=hedge,
        scale=factor,
    )


def _singular_scale(word: str | None) -> bool:
    return bool(word) and not re.search(r"(?:en|s)$", word.lower())


def _glued_identifier(text: str, start: int) -> bool:
    """True for "F-16", "COVID-19": a letter and a hyphen right before the digits."""
    if start < 2 or text[start - 1] != "-" or not text[start - 2].isalpha():
        return False
    return not re.search(r"(?i)(?<!\w)(?:mid|pre|post)-$", text[max(0, start - 6):start])


def _negative(text: str, start: int) -> bool:
    """A minus sign glued to the number and standing after a space or bracket."""
    if start < 1 or text[start - 1] not in "-−":
        return False
    return start == 1 or text[start - 2] in " \t\n("


def _classify(
    m: re.Match[str],
    ctx: _Context,
    base: float,
    unit: str | None,
    factor: float | None,
    hedge: str | None,
    start: int,
    end: int,
) -> tuple[str, str | None, int]:
    """Decide kind (and the unit/end that go with it) for one figure."""
    if m.group("ord"):
        return "ordinal", unit, end
    if unit == "age":
        return "age", unit, end
    if unit in ("%", "pp"):
        return "percent", unit, end
    raw = m.group("num") or ""
    if unit or factor or hedge or not _PLAIN_INT.fullmatch(raw):
        return "amount", unit, end
    text = ctx.text
    if len(raw) == 4 and _looks_like_year(text, start, end, int(raw)):
        return "year", "year", end
    if _looks_like_age(text, start, end, int(raw)):
        return "age", "age", end
    german_ordinal = text[end:end + 2] == ". " and text[end + 2:end + 3].isalpha()
    if german_ordinal and _prev_word(text, start) in _ORDINAL_CUES:
        return "ordinal", None, end + 1
    return "amount", None, end


def _looks_like_year(text: str, start: int, end: int, n: int) -> bool:
    if not 1000 <= n <= 2100:
        return False
    if text[start - 1:start] == "(" and text[end:end + 1] == ")":
        return True
    if text[max(0, start - 4):start].lower() == "mid-":
        return True
    return _prev_word(text, start) in _YEAR_CUES


def _looks_like_age(text: str, start: int, end: int, n: int) -> bool:
    if not 0 < n < 130:
        return False
    before = text[max(0, start - 60):start]
    if text[end:end + 1] == ")" and _NAME_PAREN.search(before):
        return True
    if text[end:end + 1] == "," and _NAME_COMMA.search(before):
        return True
    return bool(_AGE_PREFIX.search(before))
