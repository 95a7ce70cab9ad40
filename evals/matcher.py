"""Expected-figure matcher for the eval suite, written apart from the app's own figure code."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Figure:
    """One number found in a text, with its candidate values and canonical unit."""

    values: frozenset[float]
    unit: str | None
    is_year: bool
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class _Raw:
    """A number before range resolution: unscaled values, scale and unit kept apart."""

    start: int  # first character, including a leading currency symbol
    end: int
    num_start: int
    base: frozenset[float]
    scale: frozenset[float] | None
    unit: str | None
    plain: bool  # an integer written with digits only (a year candidate)


_Tail = tuple[frozenset[float] | None, str | None, int]  # scale, unit, end of the figure
_SPACE = "[ \u00a0\u202f]"
_BOUND = r"(?![0-9A-Za-zÀ-ÖØ-öø-ÿ³²])"
_NUMBER = re.compile(
    r"(?<![\w.,])(?P<sign>[-−+](?=\d))?"
    r"(?P<num>\d{1,3}(?:['’\u00a0\u202f ]\d{3})+(?!\d)(?:[.,]\d+)?|\d+(?:[.,]\d+)*)"
)
_DATE = re.compile(r"\d{1,2}\.\d{1,2}\.(\d{4})")
_GAP = re.compile(rf"{_SPACE}{{0,2}}-?{_SPACE}{{0,2}}")

_SMALL_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "eins": 1, "zwei": 2, "zwo": 2,
    "drei": 3, "vier": 4, "fünf": 5, "fuenf": 5, "sechs": 6, "sieben": 7, "acht": 8,
    "neun": 9, "zehn": 10, "elf": 11, "zwölf": 12, "zwoelf": 12,
}
_ARTICLES = {"ein", "eine", "einen", "einem", "einer", "eines"}
_NUMBER_WORD = re.compile(
    r"\b(" + "|".join(sorted({*_SMALL_WORDS, *_ARTICLES}, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)

_I = re.IGNORECASE
_SCALES: list[tuple[re.Pattern[str], frozenset[float]]] = [
    (re.compile(r"(?:Tausend|thousands?|Tsd\.?)" + _BOUND, _I), frozenset({1e3})),
    (re.compile(r"(?:Millionen|Million|Mio\.?|millions?|Mln\.?)" + _BOUND, _I),
     frozenset({1e6})),
    (re.compile(r"mn" + _BOUND), frozenset({1e6})),
    (re.compile(r"(?:Milliarden|Milliarde|Mrd\.?|Mia\.?)" + _BOUND, _I), frozenset({1e9})),
    (re.compile(r"(?:billions?|bn|BN)" + _BOUND), frozenset({1e9})),
    (re.compile(r"Billion" + _BOUND), frozenset({1e9, 1e12})),  # English title case or German
    (re.compile(r"(?:Billionen|trillions?)" + _BOUND, _I), frozenset({1e12})),
]

_WORD_UNITS: list[tuple[str, str]] = [
    (r"(?:US[- ]?)?Dollars?", "USD"),
    (r"Euros?", "EUR"),
    (r"(?:Schweizer\s+)?Franken|(?:Swiss\s+)?francs?", "CHF"),
    (r"Pfund\s+Sterling|pounds?\s+sterling", "GBP"),
    (r"Cents?", "ct"),
    (r"Prozentpunkte?n?|percentage\s+points?", "pp"),
    (r"Prozent|per\s?cent", "%"),
    (r"(?:Werk|Arbeits)tag(?:e|en|s)?|(?:working|business|work)\s+days?|workdays?",
     "working_day"),
    (r"Tag(?:e|en|es|s)?|days?", "day"),
    (r"Wochen?|weeks?", "week"),
    (r"Monat(?:e|en|s)?|months?", "month"),
    (r"Jahr(?:e|en|es|s)?|years?", "year_duration"),
    (r"Betriebsstunden?|operating\s+hours?|Stunden?|Std\.|hours?|hrs?\.?", "hour"),
    (r"Minuten?|minutes?|mins?\.?", "minute"),
    (r"Sekunden?|seconds?|secs?\.?|Sek\.", "second"),
    (r"Kilowattstunden?|kilowatt[- ]?hours?", "kWh"),
    (r"Megawattstunden?|megawatt[- ]?hours?", "MWh"),
    (r"Gigawattstunden?|gigawatt[- ]?hours?", "GWh"),
    (r"Terawattstunden?|terawatt[- ]?hours?", "TWh"),
    (r"Kilowatt", "kW"),
    (r"Megawatt", "MW"),
    (r"Gigawatt", "GW"),
    (r"Watt", "W"),
    (r"Grad(?:\s+Celsius)?|degrees?(?:\s+Celsius)?|Celsius", "°C"),
    (r"(?:Grad\s+|degrees?\s+)?Fahrenheit", "°F"),
    (r"Kelvin", "K"),
    (r"Dezibel|decibels?", "dB"),
    (r"Kilogramm|kilogram(?:me)?s?|Kilos?", "kg"),
    (r"Tonnen?|tonnes?|tons?", "t"),
    (r"Kubikmetern?|cubic\s+met(?:re|er)s?", "m3"),
    (r"Litern?|lit(?:re|er)s?", "l"),
    (r"Millimetern?|millimet(?:re|er)s?", "mm"),
    (r"Zentimetern?|centimet(?:re|er)s?", "cm"),
    (r"Kilometern?|kilomet(?:re|er)s?", "km"),
    (r"Metern?|met(?:re|er)s?", "m"),
    (r"Ampere|amperes?|amps?", "A"),
    (r"Volt", "V"),
    (r"bar", "bar"),
]
_SYMBOL_UNITS: list[tuple[str, str]] = [
    (r"US\$|\$|USD", "USD"), (r"€|EUR", "EUR"), (r"CHF|S?Fr\.", "CHF"), (r"£|GBP", "GBP"),
    (r"[cC]t\.?", "ct"), (r"%", "%"), (r"[kK]Wh", "kWh"), (r"MWh", "MWh"), (r"GWh", "GWh"),
    (r"TWh", "TWh"), (r"kW", "kW"), (r"MW", "MW"), (r"GW", "GW"), (r"W", "W"),
    (r"°\s?C|℃", "°C"), (r"°\s?F", "°F"), (r"°", "°C"), (r"K", "K"),
    (r"dB\s?\(A\)|dBA|dB", "dB"), (r"mbar", "mbar"), (r"bar", "bar"), (r"kg", "kg"),
    (r"t", "t"), (r"m³|m3", "m3"), (r"[lL]", "l"), (r"mm", "mm"), (r"cm", "cm"),
    (r"km", "km"), (r"m", "m"), (r"A", "A"), (r"kV", "kV"), (r"V", "V"), (r"h", "hour"),
    (r"[mM]in\.?", "minute"), (r"s", "second"),
]


def _compile_units(table: list[tuple[str, str]], flags: int) -> list[tuple[re.Pattern[str], str]]:
    return [(re.compile(f"(?:{pattern}){_BOUND}", flags), unit) for pattern, unit in table]


_WORD_UNIT_RES = _compile_units(_WORD_UNITS, re.IGNORECASE)
_SYMBOL_UNIT_RES = _compile_units(_SYMBOL_UNITS, 0)
_MONEY = {"EUR", "USD", "CHF", "GBP", "ct"}
_LENGTH = {"mm", "cm", "m", "km"}
_TIME = {"second", "minute", "hour", "day", "week", "month", "year_duration"}
_PER = re.compile(rf"{_SPACE}*(?:(?P<slash>/)|(?:pro|per|je)\s+){_SPACE}*", re.IGNORECASE)
_PRE_CURRENCY = re.compile(
    r"(?:(?<![A-Za-z])(?:US\$|USD|EUR|CHF|GBP|SFr\.)|US\$|\$|€|£)[ \u00a0]?$"
)
_PRE_UNIT = {"US$": "USD", "USD": "USD", "$": "USD", "EUR": "EUR", "€": "EUR",
             "CHF": "CHF", "SFr.": "CHF", "GBP": "GBP", "£": "GBP"}

_MONTHS = (
    "januar|jänner|februar|märz|maerz|april|mai|juni|juli|august|september|oktober|"
    "november|dezember|january|february|march|may|june|july|october|december"
)
_YEAR_CUE = re.compile(
    r"(?:\b(?:seit|since|in|ab|bis|until|till|by|during|während|anfang|mitte|ende|"
    r"frühjahr|frühling|sommer|herbst|winter|spring|summer|autumn|fall|early|late|"
    rf"beginning|start|end|middle|{_MONTHS})(?:\s+of)?|jahr|jahres|year|\bmid-?)\s*$",
    re.IGNORECASE,
)
_COUNT_CUE = re.compile(
    r"\b(?:rund|etwa|ungefähr|knapp|fast|beinahe|über|mehr\s+als|weniger\s+als|mindestens|"
    r"höchstens|maximal|bis\s+zu|insgesamt|about|approximately|roughly|some|nearly|almost|"
    r"over|more\s+than|fewer\s+than|less\s+than|at\s+least|at\s+most|up\s+to|total\s+of)\s+$",
    re.IGNORECASE,
)
_RANGE_JOIN = re.compile(
    r"\s*(?:[-–—]|bis|to|und|and|oder|or)\s*"
    r"(?:(?:bis\s+zu|bis\s+hin\s+zu|zu|maximal|höchstens|mindestens|up\s+to|at\s+most|"
    r"at\s+least|possibly|perhaps|maybe|möglicherweise|vielleicht|sogar|even|etwa|rund|"
    r"about|around|nearly|fast|knapp|über|over|more\s+than|mehr\s+als)\s+)*",
    re.IGNORECASE,
)


def _grouped(head: str, sep: str) -> str | None:
    """Digits of `head` written with thousands separator `sep`, or None when misgrouped."""
    parts = head.split(sep)
    if not 1 <= len(parts[0]) <= 3 or any(len(part) != 3 for part in parts[1:]):
        return None
    return "".join(parts)


def _read_mixed(raw: str) -> frozenset[float] | None:
    """Both '.' and ',' present: the last one is the decimal separator."""
    decimal = "." if raw.rfind(".") > raw.rfind(",") else ","
    head, _, tail = raw.rpartition(decimal)
    digits = _grouped(head, "," if decimal == "." else ".")
    if digits is None or decimal in head:
        return None
    return frozenset({float(f"{digits}.{tail}")})


def _read_single(raw: str, sep: str) -> frozenset[float] | None:
    """Only one kind of '.'/',' separator: thousands, decimal, or ambiguous between them."""
    if raw.count(sep) > 1:
        digits = _grouped(raw, sep)
        return None if digits is None else frozenset({float(digits)})
    head, _, tail = raw.partition(sep)
    decimal = float(f"{head}.{tail}")
    if len(tail) == 3 and 1 <= len(head) <= 3 and not head.startswith("0"):
        return frozenset({float(head + tail), decimal})
    return frozenset({decimal})


def _read_number(raw: str) -> frozenset[float] | None:
    """Candidate values of a numeral written in German, Swiss or English style."""
    if re.search(r"['’\u00a0\u202f ]", raw):
        found = re.fullmatch(r"([^.,]+)(?:[.,](\d+))?", raw)
        if found is None:
            return None
        digits = re.sub(r"\D", "", found.group(1))
        tail = found.group(2)
        return frozenset({float(f"{digits}.{tail}" if tail else digits)})
    if "." in raw and "," in raw:
        return _read_mixed(raw)
    for sep in ".,":
        if sep in raw:
            return _read_single(raw, sep)
    return frozenset({float(raw)})


def _gap_end(text: str, pos: int) -> int:
    found = _GAP.match(text, pos)
    return pos if found is None else found.end()


def _match_scale(text: str, pos: int) -> tuple[frozenset[float] | None, int]:
    gap = _gap_end(text, pos)
    for pattern, factors in _SCALES:
        found = pattern.match(text, gap)
        if found:
            return factors, found.end()
    return None, pos


def _match_unit(text: str, pos: int, words_only: bool = False) -> tuple[str | None, int]:
    """The longest unit starting at `pos` (after an optional space or hyphen)."""
    gap = _gap_end(text, pos)
    tables = _WORD_UNIT_RES if words_only else _WORD_UNIT_RES + _SYMBOL_UNIT_RES
    best: tuple[str | None, int] = (None, pos)
    for pattern, unit in tables:
        found = pattern.match(text, gap)
        if found and found.end() > best[1]:
            best = (unit, found.end())
    return best


def _match_per(text: str, unit: str, pos: int) -> tuple[str, int]:
    """Extend `unit` to a rate such as 'ct/kWh' or 'EUR/km' when one follows."""
    joiner = _PER.match(text, pos)
    if not joiner:
        return unit, pos
    second, end = _match_unit(text, joiner.end())
    if second is None or end == joiner.end():
        return unit, pos
    rate = unit in _MONEY or (unit in _LENGTH and second in _TIME)
    if joiner.group("slash") or rate:
        return f"{unit}/{second}", end
    return unit, pos


def _tail(text: str, pos: int, words_only: bool = False) -> _Tail:
    """Scale word, unit and rate that follow a numeral ending at `pos`."""
    scale, pos = _match_scale(text, pos)
    unit, end = _match_unit(text, pos, words_only)
    if unit is None:
        return scale, None, pos
    unit, end = _match_per(text, unit, end)
    return scale, unit, end


def _pre_currency(text: str, start: int, floor: int) -> tuple[str | None, int]:
    found = _PRE_CURRENCY.search(text, max(floor, start - 5), start)
    if not found:
        return None, start
    return _PRE_UNIT[found.group().strip()], found.start()


def _digit_raw(text: str, found: re.Match[str], floor: int) -> _Raw | None:
    num = found.group("num")
    if text[found.start() - 1:found.start()] == "[" or text[found.end():found.end() + 1] == "]":
        return None  # citation marker such as [1]
    base = _read_number(num)
    if base is None:
        return None
    if found.group("sign") in ("-", "−"):
        base = frozenset(-value for value in base)
    unit, start = _pre_currency(text, found.start(), floor)
    if unit is None:
        scale, unit, end = _tail(text, found.end())
    else:
        scale, end = _match_scale(text, found.end())
        unit, end = _match_per(text, unit, end)
    plain = num.isdigit() and found.group("sign") is None
    return _Raw(start, end, found.start(), base, scale, unit, plain)


def _date_year(text: str, start: int, end: int) -> _Raw | None:
    date = _DATE.fullmatch(text, start, end)
    if not date:
        return None
    return _Raw(start, end, start, frozenset({float(date.group(1))}), None, None, False)


def _digit_raws(text: str) -> list[_Raw]:
    raws: list[_Raw] = []
    floor = 0
    for found in _NUMBER.finditer(text):
        if found.start() < floor:
            continue
        raw = _digit_raw(text, found, floor) or _date_year(text, found.start(), found.end())
        if raw is not None:
            raws.append(raw)
            floor = raw.end
    return raws


def _word_raws(text: str, taken: list[_Raw]) -> list[_Raw]:
    raws: list[_Raw] = []
    for found in _NUMBER_WORD.finditer(text):
        if any(raw.start <= found.start() < raw.end for raw in taken):
            continue
        word = found.group().lower()
        scale, unit, end = _tail(text, found.end(), words_only=True)
        if word in _ARTICLES and scale is None and unit is None:
            continue
        value = float(_SMALL_WORDS.get(word, 1))
        raws.append(_Raw(found.start(), end, found.start(), frozenset({value}), scale, unit,
                         False))
    return raws


def _year_cue(text: str, raw: _Raw) -> re.Match[str] | None:
    return _YEAR_CUE.search(text, max(0, raw.num_start - 40), raw.num_start)


def _strong_year(text: str, raw: _Raw) -> bool:
    if _DATE.fullmatch(text, raw.start, raw.end):
        return True
    value = next(iter(raw.base))
    cued = raw.plain and raw.scale is None and raw.unit is None and 1000 <= value <= 2199
    return cued and _year_cue(text, raw) is not None


def _inherit(text: str, left: _Raw, right: _Raw) -> _Raw:
    """Range such as '5,6 bis 9,8 Milliarden Dollar': the left end takes scale and unit."""
    if left.unit is not None or (right.unit is None and right.scale is None):
        return left
    if not _RANGE_JOIN.fullmatch(text, left.end, right.start) or _strong_year(text, left):
        return left
    scale = left.scale if left.scale is not None else right.scale
    return replace(left, scale=scale, unit=right.unit, plain=False)


def _resolve_ranges(text: str, raws: list[_Raw]) -> list[_Raw]:
    resolved = list(raws)
    for i in range(len(resolved) - 2, -1, -1):
        resolved[i] = _inherit(text, resolved[i], resolved[i + 1])
    return resolved


def _is_year(text: str, raw: _Raw) -> tuple[bool, int]:
    """Whether `raw` is a calendar year, and where its text starts (at a year cue if any)."""
    if _strong_year(text, raw):
        cue = _year_cue(text, raw)
        return True, raw.start if cue is None else cue.start()
    value = next(iter(raw.base))
    bare = raw.plain and raw.scale is None and raw.unit is None and 1900 <= value <= 2100
    counted = _COUNT_CUE.search(text, max(0, raw.start - 30), raw.start) is not None
    return bare and not counted, raw.start


def _figure(text: str, raw: _Raw) -> Figure:
    factors = raw.scale or frozenset({1.0})
    values = frozenset(value * factor for value in raw.base for factor in factors)
    is_year, start = _is_year(text, raw)
    return Figure(values, raw.unit, is_year, text[start:raw.end], start, raw.end)


def parse_figures(text: str) -> list[Figure]:
    """Every figure in `text`, in reading order."""
    digits = _digit_raws(text)
    raws = sorted(digits + _word_raws(text, digits), key=lambda raw: raw.start)
    return [_figure(text, raw) for raw in _resolve_ranges(text, raws)]


def expected_figure(expected: str) -> Figure | None:
    """The main (first) figure of an expected-figure string, None if it has none."""
    figures = parse_figures(expected)
    return figures[0] if figures else None


def _same_value(left: frozenset[float], right: frozenset[float]) -> bool:
    return any(math.isclose(a, b, rel_tol=1e-9) for a in left for b in right)


def _bare_year(figure: Figure) -> bool:
    """A year guessed from a lone four-digit number, which may just as well be a count."""
    return figure.is_year and figure.text.isdigit()


def _years_compatible(expected: Figure, got: Figure) -> bool:
    if expected.is_year == got.is_year:
        return True
    return _bare_year(expected) or _bare_year(got)


def figure_matches(expected: Figure, got: Figure) -> bool:
    """True when `got` states `expected`: a shared value and a compatible unit."""
    if not _same_value(expected.values, got.values):
        return False
    if expected.unit is None:
        return _years_compatible(expected, got)
    # "2,48 Euro" states the price in "2,48 Euro je Kubikmeter": a rate of the expected unit.
    return expected.unit == got.unit or (got.unit or "").startswith(expected.unit + "/")


def expected_stated(expected: str, answer: str) -> bool:
    """True when `answer` states the figure written in `expected` (same value, compatible unit)."""
    wanted = expected_figure(expected)
    if wanted is None:
        return False
    return any(figure_matches(wanted, got) for got in parse_figures(answer))
