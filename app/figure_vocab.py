"""Word lists and regular expressions that recognise figures in German/English text."""

from __future__ import annotations

import re

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
