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
from dataclasses import replace

from app.figure_parsing import (
    Figure,
    _build,
    _Context,
    _decimal_mark,
    _guess_lang,
    _scan_masks,
)
from app.figure_vocab import (
    _AND_GAP,
    _BETWEEN_BEFORE,
    _PLAIN_INT,
    _QUANTITY,
    _RANGE_GAP,
)

__all__ = ["Figure", "extract_figures", "figures_match", "unsupported_figures"]

log = logging.getLogger(__name__)


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


# ---------------------------------------------------------------- ranges


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
