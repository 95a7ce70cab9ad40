"""Find figures (money, percentages, years, ages) in German/English text and check claims."""

# Rule set (the contract used by the answer verifier and the eval suite)
# -----------------------------------------------------------------------
# Number formats
#   * Grouped digits: "15.000", "15,000", "15'000", "15’000", "15 000" (normal, thin or
#     no-break space). Groups after the first must have exactly 3 digits.
#   * A number holding both "." and "," uses the LAST one as decimal mark ("1.200,5",
#     "1,200.5"); after an apostrophe/space grouping the "." or "," is always a decimal
#     mark ("1'234.50"). A separator repeated ("1.200.000") is always a grouping.
#   * A single "." or "," followed by exactly 3 digits with a 1-3 digit non-zero
#     integer part ("1.200", "1,200") is ambiguous. It is resolved, in order, by the
#     `lang` hint ("de": "," is decimal, "en": "." is decimal), then by the text's own
#     unambiguous numbers ("5,6" in the same text makes "," the decimal mark, so
#     "1,250" = 1.25 and "1.200" = 1200), else it is read as thousands grouping.
#     Any other single separator is a decimal mark ("5,6", "5.6", "0,125", "1234,5").
# Scale words (the multiplier is kept in Figure.scale)
#   * Tausend/thousand/Tsd./k = 1e3; Million(en)/million(s)/Mio./mn/mln = 1e6;
#     Milliarde(n)/Mrd./Mia./billion(s)/bn/bln = 1e9; Billionen/trillion(s)/tn = 1e12;
#     Billiarde(n) = 1e15; Trillionen = 1e18.
#   * Capitalised "Billion"/"Trillion" is German (1e12/1e18) when the text is German
#     (lang hint, else a stop-word guess), English (1e9/1e12) otherwise; lowercase
#     "billion" is always English.
#   * "m"/"M" glued to digits means million only next to a currency ("$5m", "5m USD");
#     "5m" alone is left unscaled (metres, minutes). A glued "k"/"bn"/"mn"/"tn" always scales.
# Units (Figure.unit): "USD" (Dollar, US-Dollar, US dollars, USD, $, US$), "EUR" (Euro, EUR,
#   €), "CHF" (Franken, Schweizer Franken, Swiss francs, CHF, Fr., SFr.), "GBP" (£, GBP),
#   "RUB" (Rubel, roubles), "%" (Prozent, %, percent, per cent, pct), "pp" (Prozentpunkte,
#   percentage points), "year" for calendar years, "age" for ages. Counted nouns are ignored.
# Kinds (Figure.kind): "amount", "percent" (unit % or pp), "year", "age", "ordinal".
#   * year: a plain 4-digit integer 1000..2100 without unit, scale or hedge, when the
#     word before is a year cue (seit, im, in, ab, bis, aus, Jahr, Sommer, Ende, Mitte,
#     since, in, until, by, during, year, summer, early, late, a month name, Q1..Q4, ...)
#     or it stands alone in parentheses "(2023)", or it is the year of a date
#     ("2025-09-18", "18.09.2025", "18. September 2025", "September 18, 2025"). Other
#     4-digit numbers are amounts: "rund 2000 Soldaten" = 2000. "vor"/"nach"/"before"/
#     "after"/"from" are NOT cues ("vor 2000 Zuschauern"); "in" IS a cue, so the rare
#     German "in 2000 Fällen" reads as a year.
#   * age: "Putin (72)" (1-3 digits in parentheses right after a capitalised word),
#     "72-jährig(e/n/r/s/m)", "72 Jahre alt", "72-year-old", "72 years old", "aged 72",
#     "im Alter von 72", "Putin, 72,". Ages must be 1..129.
#   * ordinal: "1st", "2nd", "3rd", "4th"; German "3." after an article or contraction
#     ("der 3. Versuch", "im 3. Quartal").
# Hedges: rund, etwa, ca., circa, fast, knapp, mindestens, höchstens, maximal, bis zu,
#   über, mehr als, about, around, approximately, nearly, almost, some, at least, at most,
#   up to, more than, over, less than, ~ ... set approximate=True and Figure.hedge; they
#   never change the value and are not part of the span.
# Spans: [start, end) covers an optional leading currency, the number, the scale word
#   and the unit ("5,6 Milliarden US-Dollar", "$5.6bn", "15'000"); text[start:end] == text.
# Ranges: "X bis Y", "X bis zu/maximal Y", "X to Y", "from X to Y", "X–Y", "X-Y",
#   "zwischen X und Y", "between X and Y". Each end stays its own Figure; both carry
#   low/high of the whole range. The second end's scale is carried back to a first end
#   without one ("5,6 bis 9,8 Milliarden" = 5.6e9..9.8e9) unless that would make the first
#   end exceed the second; its unit is carried back to a first end without unit ("457
#   Millionen bis 1,2 Milliarden Dollar" = 457e6 USD..1.2e9 USD). The carried scale/unit
#   is not inside the first end's span. A year range ("seit 2020 bis 2023") makes both
#   ends years; when the other end cannot be a year, both are amounts ("von 500 bis 1200
#   Soldaten": the "bis" cue does not make 1200 a year).
# Not figures: citation markers "[1]", "[2][3]", "[1, 2]", "[^1]"; list markers "1." /
#   "2)" at line start; identifiers with letters glued in front ("F-16", "G7", "COVID-19");
#   clock times ("14:30", "14.30 Uhr"); day and month of a date.
# Number words: zwei..zwölf, two..twelve are figures; ein/eine/one/a only with a singular
#   scale word ("eine Milliarde", "a million"; not "an Millionen", "ein Millionen-Deal").
# Matching (figures_match): values equal within rel_tol (hedges ignored); units compatible
#   when equal or when one side has none (USD vs EUR is a mismatch, "25" vs "25 %" is not);
#   the kinds year, age and ordinal only ever match their own kind, so a year never matches
#   an amount of the same digits: "seit 2000" does not support "2000 soldiers" (the verifier
#   prefers flagging to vouching). rel_tol only absorbs rounding of scaled or decimal values
#   ("5.62 billion" ~ "5,6 Milliarden"); when both sides are years, ages, ordinals or unscaled
#   whole numbers they must be equal ("201 soldiers" is not "200 Soldaten", 2023 is not 2024).
#   A value inside an evidence range but not at one of its ends is NOT supported.

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, replace

__all__ = ["Figure", "extract_figures", "figures_match", "unsupported_figures"]

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


# ---------------------------------------------------------------- vocabulary


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_SPACES = " \u00a0\u2009\u202f"
_LETTER_AHEAD = r"(?![^\W\d_])"  # not followed by a letter

_SCALES: dict[str, float] = {
    "tausend": 1e3, "thousand": 1e3, "tsd": 1e3, "k": 1e3,
    "million": 1e6, "millionen": 1e6, "millions": 1e6, "mio": 1e6, "mn": 1e6, "mln": 1e6,
    "m": 1e6,
    "milliarde": 1e9, "milliarden": 1e9, "mrd": 1e9, "mia": 1e9, "bn": 1e9, "bln": 1e9,
    "billions": 1e9,
    "billionen": 1e12, "trillions": 1e12, "tn": 1e12, "trn": 1e12,
    "billiarde": 1e15, "billiarden": 1e15,
    "trillionen": 1e18,
}

# (English value, German value) for words whose meaning depends on the language.
_FALSE_FRIENDS: dict[str, tuple[float, float]] = {"billion": (1e9, 1e12), "trillion": (1e12, 1e18)}

_SCALE_RE = (
    r"(?:Billiarden?|Billionen|Billions?|billions?|BILLIONS?|Trillionen|Trillions?|trillions?"
    r"|TRILLIONS?|Milliarden?|Mrd\.?|Mia\.?|Millionen|Millions?|millions?|MILLIONS?|Mio\.?"
    r"|mln|mn|bln|bn|trn|tn|[Tt]ausend|[Tt]housand|Tsd\.?)"
)
_GLUED_SCALE_RE = r"(?:bn|mn|tn|k|K|m|M)"

_UNIT_RE = (
    r"(?:US-Dollars?|U\.\s?S\.\s?[Dd]ollars?|US\s[Dd]ollars?|US\$|USD|[Dd]ollars?|\$"
    r"|[Ee]uros?|EUR|€|Schweizer\sFranken|Franken|Swiss\sfrancs?|francs?|CHF|SFr\.|Fr\."
    r"|Rubel|r[o]?ubles?|RUB|GBP|£"
    r"|Prozentpunkten?|percentage\spoints?|Prozent|%|per\s?cent|pct\.?"
    r"|[jJ]ährige?[nrsm]?|Jahre\salt|year-old|years?\sold)"
)
_PREFIX_CURRENCY_RE = r"(?:US-?\$|US\$|\$|€|£|USD|EUR|CHF|GBP|SFr\.|Fr\.)"

_UNIT_RULES: tuple[tuple[str, str], ...] = (
    ("dollar", "USD"), ("usd", "USD"), ("$", "USD"),
    ("euro", "EUR"), ("eur", "EUR"), ("€", "EUR"),
    ("franken", "CHF"), ("franc", "CHF"), ("chf", "CHF"), ("fr.", "CHF"),
    ("rubel", "RUB"), ("ruble", "RUB"), ("rouble", "RUB"), ("rub", "RUB"),
    ("gbp", "GBP"), ("£", "GBP"),
    ("prozentpunkt", "pp"), ("percentage point", "pp"),
    ("prozent", "%"), ("%", "%"), ("cent", "%"), ("pct", "%"),
    ("jähr", "age"), ("alt", "age"), ("old", "age"),
)
_CURRENCIES = frozenset({"USD", "EUR", "CHF", "GBP", "RUB"})

_NUMBER_WORDS: dict[str, int] = {
    "ein": 1, "eine": 1, "einer": 1, "einem": 1, "einen": 1, "one": 1, "a": 1,
    "zwei": 2, "drei": 3, "vier": 4, "fünf": 5, "sechs": 6, "sieben": 7, "acht": 8,
    "neun": 9, "zehn": 10, "elf": 11, "zwölf": 12,
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}
_NEEDS_SCALE = frozenset({"ein", "eine", "einer", "einem", "einen", "one", "a"})

_HEDGE_RE = (
    r"(?:bis\s+zu|up\s+to|mehr\s+als|weniger\s+als|more\s+than|less\s+than|fewer\s+than"
    r"|at\s+least|at\s+most|close\s+to|as\s+(?:many|much)\s+as|upwards\s+of|an\s+die"
    r"|an\s+estimated|rund|rd\.|etwa|ca\.|circa|zirka|ungefähr|annähernd|nahezu|fast|beinahe"
    r"|knapp|mindestens|wenigstens|höchstens|maximal|schätzungsweise|über|unter"
    r"|about|around|approximately|approx\.|roughly|nearly|almost|some|estimated|over|under)"
)


_MONTHS = (
    "Januar|Jänner|Februar|März|April|Mai|Juni|Juli|August|September|Oktober|November"
    "|Dezember|January|February|March|May|June|July|October|December"
    "|Jan\\.|Feb\\.|Mär\\.|Mrz\\.|Apr\\.|Jun\\.|Jul\\.|Aug\\.|Sept?\\.|Okt\\.|Oct\\.|Nov\\."
    "|Dez\\.|Dec\\."
)
_YEAR_CUES = _word_set(
    "seit im in ab bis aus jahr jahre jahres jahren jahrs geschäftsjahr zeitraum stand "
    "sommer winter frühling frühjahr herbst anfang ende mitte "
    "januar jänner februar märz april mai juni juli august september oktober november "
    "dezember since until till by during year years fiscal fy summer winter spring autumn "
    "fall early late mid end start beginning january february march may june july "
    "october december q1 q2 q3 q4 h1 h2"
)
_ORDINAL_CUES = _word_set(
    "der die das den dem des am im zum zur vom beim ihr ihre ihren ihrem ihrer "
    "sein seine seinen seinem seiner"
)
_GERMAN_WORDS = _word_set(
    "der die das und nicht mit von ist ein eine im zu den auf für sich dem des seit wird "
    "hat sind auch laut nach"
)
_ENGLISH_WORDS = _word_set(
    "the and of to is with that for was were has have it by this from are since at least "
    "about"
)

# ---------------------------------------------------------------- patterns

_NUMBER = (
    r"\d{1,3}(?P<grp>[.,'’" + _SPACES + r"])\d{3}(?:(?P=grp)\d{3})*"
    r"(?:(?!(?P=grp))[.,]\d+)?"
    r"|\d+(?:[.,]\d+)?"
)
_SEP = r"[" + _SPACES + r"]?-?"

_QUANTITY = re.compile(
    r"(?<![\w.,'’])"
    r"(?:(?P<cur>" + _PREFIX_CURRENCY_RE + r")[" + _SPACES + r"]?)?"
    r"(?:(?P<num>" + _NUMBER + r")(?!\d)(?![.,'’]\d)"
    r"|(?P<word>(?i:" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r"))\b)"
    r"(?:(?<=\d)(?P<ord>st|nd|rd|th)" + _LETTER_AHEAD
    + r"|(?<=\d)(?P<gscale>" + _GLUED_SCALE_RE + r")" + _LETTER_AHEAD
    + r"|" + _SEP + r"(?P<scale>" + _SCALE_RE + r")" + _LETTER_AHEAD + r")?"
    r"(?:" + _SEP + r"(?P<unit>" + _UNIT_RE + r")" + _LETTER_AHEAD + r")?"
)
_PLAIN_DECIMAL_TOKEN = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)+(?!\d)")
_PLAIN_INT = re.compile(r"\d+")

_CITATION = re.compile(r"\[\^?\d+(?:\s*[-–,]\s*\d+)*\]")
_LIST_MARKER = re.compile(r"(?m)^[ \t]*(?:[-*•][ \t]*)?\d{1,3}[.)](?=[ \t])")
_TIME = re.compile(r"(?<![\d.])\d{1,2}(?::\d{2}(?::\d{2})?|\.\d{2}(?=\s?Uhr\b))(?![\d])")
_DATES = (
    re.compile(r"(?<!\d)(?P<year>\d{4})-\d{2}-\d{2}(?!\d)"),
    re.compile(r"(?<![\d.])\d{1,2}\.\s?\d{1,2}\.\s?(?P<year>\d{4}|\d{2})(?![\d])"),
    re.compile(r"(?<![\d/])\d{1,2}/\d{1,2}/(?P<year>\d{4})(?!\d)"),
    re.compile(r"(?<![\d.,])\d{1,2}\.?\s+(?:" + _MONTHS + r")(?!\w)(?:\s+(?P<year>\d{4})(?!\d))?"),
    re.compile(
        r"(?<!\w)(?:" + _MONTHS + r")\s+\d{1,2}(?:st|nd|rd|th)?(?!\d)(?:,?\s+(?P<year>\d{4})(?!\d))?"
    ),
)

_HEDGE_BEFORE = re.compile(r"(?i)(?:(?<![\w.])(?P<h>" + _HEDGE_RE + r")\s*|(?P<t>[~≈])\s*)$")
_BETWEEN_BEFORE = re.compile(r"(?i)\b(?:zwischen|between)\s+(?:" + _HEDGE_RE + r"\s+)?$")
_RANGE_GAP = re.compile(
    r"(?i)^\s*(?:[-–—‒]|bis(?:\s+hin)?(?:\s+zu)?|to|through)\s*(?:" + _HEDGE_RE + r"\s*)?$"
)
_AND_GAP = re.compile(r"(?i)^\s*(?:und|and)\s*(?:" + _HEDGE_RE + r"\s*)?$")
_AGE_PREFIX = re.compile(r"(?i)\b(?:aged|age(?:\s+of)?|alter\s+von)\s*$")
_NAME_PAREN = re.compile(r"[A-ZÄÖÜ][\w-]*\s*\($")
_NAME_COMMA = re.compile(r"\b[A-ZÄÖÜ][\w-]+,\s*$")
_PREV_WORD = re.compile(r"([\w]+)[^\w\n]{0,2}$")

# ---------------------------------------------------------------- public API


def extract_figures(text: str, lang: str | None = None) -> list[Figure]:
    """Return every figure in `text`, in reading order; `lang` ("de"/"en") only resolves ambiguities."""
    masks, date_years = _scan_masks(text)
    hint = lang[:2].lower() if lang else None
    ctx = _Context(
        text=text,
        masks=masks,
        decimal_mark=_decimal_mark(text, masks, hint),
        german=(hint or _guess_lang(text)) == "de",
    )
    found = [f for m in _QUANTITY.finditer(text) if (f := _build(m, ctx)) is not None]
    figures = sorted(found + date_years, key=lambda f: f.start)
    return _link_ranges(text, figures)


def figures_match(a: Figure, b: Figure, rel_tol: float = 0.005) -> bool:
    """True when `a` and `b` state the same quantity (see the matching rules at the top)."""
    if (a.kind in _EXACT_KINDS or b.kind in _EXACT_KINDS) and a.kind != b.kind:
        return False
    if a.unit and b.unit and a.unit != b.unit:
        return False
    if _is_exact(a) and _is_exact(b):
        return a.value == b.value
    return math.isclose(a.value, b.value, rel_tol=rel_tol, abs_tol=1e-9)


def unsupported_figures(claim: str, evidence: str, rel_tol: float = 0.005) -> list[Figure]:
    """Return the figures of `claim` that no figure of `evidence` matches."""
    pool = extract_figures(evidence)
    missing = [f for f in extract_figures(claim) if not any(figures_match(f, e, rel_tol) for e in pool)]
    if missing:
        log.debug("unsupported figures: %s", [f.text for f in missing])
    return missing


# ---------------------------------------------------------------- internals

_EXACT_KINDS = frozenset({"year", "age", "ordinal"})


def _is_exact(f: Figure) -> bool:
    """Years, ages, ordinals and unscaled whole numbers are compared without tolerance."""
    return f.kind in _EXACT_KINDS or (f.scale is None and f.value.is_integer())


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


def _link_ranges(text: str, figures: list[Figure]) -> list[Figure]:
    """Join neighbouring figures that form a range (see the range rules at the top)."""
    out = list(figures)
    for i in range(len(out) - 1):
        a, b = out[i], out[i + 1]
        if a.is_range or not _is_range_gap(text, a, b):
            continue
        pair = _make_range(a, b)
        if pair:
            out[i], out[i + 1] = pair
    return out


def _is_range_gap(text: str, a: Figure, b: Figure) -> bool:
    gap = text[a.end:b.start]
    if _RANGE_GAP.match(gap):
        return True
    return bool(_AND_GAP.match(gap) and _BETWEEN_BEFORE.search(text[max(0, a.start - 40):a.start]))


_QUANTITY_KINDS = frozenset({"amount", "percent"})


def _make_range(a: Figure, b: Figure) -> tuple[Figure, Figure] | None:
    if {a.kind, b.kind} == {"year", "amount"}:
        years = _as_year(a), _as_year(b)
        if years[0] and years[1]:
            a, b = years
        else:  # "von 500 bis 1200 Soldaten": the cue word was the range's "bis"
            a, b = _as_amount(a), _as_amount(b)
    if a.kind in _QUANTITY_KINDS and b.kind in _QUANTITY_KINDS:
        if a.unit and b.unit and a.unit != b.unit:
            return None
        a = _carry_back(a, b)
    elif not a.kind == b.kind == "year":
        return None
    low, high = min(a.value, b.value), max(a.value, b.value)
    return replace(a, low=low, high=high), replace(b, low=low, high=high)


def _carry_back(a: Figure, b: Figure) -> Figure:
    """Give the first end of a range the scale and unit its second end spells out."""
    if a.scale is None and b.scale is not None and abs(a.value) <= abs(b.value / b.scale):
        a = replace(a, value=a.value * b.scale, scale=b.scale)
    if a.unit is None and b.unit is not None:
        a = replace(a, unit=b.unit, kind=b.kind)
    return a


def _as_year(f: Figure) -> Figure | None:
    if f.kind == "year":
        return f
    bare = f.unit is None and f.scale is None and not f.approximate
    if bare and _PLAIN_INT.fullmatch(f.text) and len(f.text) == 4 and 1000 <= f.value <= 2100:
        return replace(f, kind="year", unit="year")
    return None


def _as_amount(f: Figure) -> Figure:
    return replace(f, kind="amount", unit=None) if f.kind == "year" else f
