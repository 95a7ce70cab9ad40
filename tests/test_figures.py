"""Unit tests for app.figures: extraction rules and the claim/evidence verifier."""

from pathlib import Path

import pytest

from app.figures import Figure, extract_figures, figures_match, unsupported_figures

SEED = Path(__file__).resolve().parents[1] / "corpus" / "000_218c33ea26fbfb53.txt"

# Sentences taken verbatim from the seed article (German evidence).
EV_WEAPONS = (
    "Laut der Analyse von Olena Guseinova von der Hankuk-Universität für Fremdsprachen in "
    "Seoul hat Nordkorea seit 2023 Waffen im Wert von mindestens 5,6 Milliarden US-Dollar, "
    "möglicherweise sogar bis zu 9,8 Milliarden Dollar, an Russland geliefert. Darunter "
    "Millionen Artilleriegranaten, Raketen, Abschussvorrichtungen und rund 15'000 Soldaten, "
    "die im Ukraine-Krieg kämpfen."
)
EV_RETURN = (
    "Die Gegenleistungen aus Moskau sind laut Studie dagegen mager: Lebensmittel, Öl, "
    "Luftabwehrsysteme – und vielleicht ein paar Kampfflugzeuge – im Wert von gerade einmal "
    "457 Millionen bis maximal 1,2 Milliarden Dollar."
)
EV_DEAD = (
    "Der südkoreanische Geheimdienst (NIS) schätzt, dass rund 2000 nordkoreanische Soldaten "
    "bereits gefallen sind."
)
EV_LEADERS = (
    "zeigt, dass die Zusammenarbeit zwischen Kreml-Chef Wladimir Putin (72) und Kim Jong Un "
    "(41) vor allem eines ist: eine Einbahnstrasse"
)
EV_SUMMER = (
    "Dabei hatten Putin und Kim im Sommer 2024 eine strategische Partnerschaft besiegelt – "
    "inklusive gegenseitigem militärischem Beistand."
)


def figs(text: str, lang: str | None = None) -> list[Figure]:
    """Extract and check the span invariant on every figure."""
    found = extract_figures(text, lang=lang)
    for f in found:
        assert text[f.start:f.end] == f.text, f
    return found


def one(text: str, lang: str | None = None) -> Figure:
    found = figs(text, lang)
    assert len(found) == 1, found
    return found[0]


def values(text: str) -> list[float]:
    return [f.value for f in figs(text)]


# ---------------------------------------------------------------- number formats


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5,6", 5.6),
        ("5.6", 5.6),
        ("15.000", 15000),
        ("15,000", 15000),
        ("15'000", 15000),
        ("15’000", 15000),
        ("15 000", 15000),
        ("15\u202f000", 15000),
        ("15\u00a0000", 15000),
        ("1.200,5", 1200.5),
        ("1,200.5", 1200.5),
        ("1'234.50", 1234.5),
        ("1.200.000", 1_200_000),
        ("1,200,000", 1_200_000),
        ("2000", 2000),
        ("457", 457),
        ("0,125", 0.125),
        ("1234,567", 1234.567),
        ("3,14159", 3.14159),
    ],
)
def test_number_formats(text: str, value: float) -> None:
    f = one(text)
    assert f.value == pytest.approx(value)
    assert f.text == text
    assert f.kind == "amount"


@pytest.mark.parametrize(
    ("text", "lang", "value"),
    [
        ("1.200", None, 1200),  # default: a 3-digit group is a thousands group
        ("1,200", None, 1200),
        ("1,200", "de", 1.2),  # the hint decides
        ("1.200", "de", 1200),
        ("1.200", "en", 1.2),
        ("1,200", "en", 1200),
        ("1'200.5", "de", 1200.5),  # unambiguous forms ignore the hint
    ],
)
def test_ambiguous_separator(text: str, lang: str | None, value: float) -> None:
    assert one(text, lang).value == pytest.approx(value)


def test_ambiguous_separator_follows_the_texts_own_convention() -> None:
    assert values("5,6 Milliarden und 1,250 Milliarden") == pytest.approx([5.6e9, 1.25e9])
    assert values("5,6 Milliarden und 1.250 Soldaten") == pytest.approx([5.6e9, 1250])
    assert values("5.6 billion and 1,250 soldiers") == pytest.approx([5.6e9, 1250])


def test_negative_number() -> None:
    f = one("Die Wirtschaft schrumpfte um -5 %.")
    assert (f.value, f.unit, f.text) == (-5, "%", "-5 %")


# ---------------------------------------------------------------- scale words


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("15 Tausend", 15e3),
        ("2 thousand", 2e3),
        ("5 Tsd.", 5e3),
        ("10k", 10e3),
        ("1 Million", 1e6),
        ("25 Millionen", 25e6),
        ("25 million", 25e6),
        ("5,6 Mio.", 5.6e6),
        ("5.6 mn", 5.6e6),
        ("1 Milliarde", 1e9),
        ("5,6 Milliarden", 5.6e9),
        ("1,2 Mrd.", 1.2e9),
        ("3 Mia.", 3e9),
        ("5.6 billion", 5.6e9),
        ("5.6 bn", 5.6e9),
        ("5.6bn", 5.6e9),
        ("5'600 Millionen", 5.6e9),
        ("1,200 million", 1.2e9),
        ("5,6 Billionen", 5.6e12),
        ("1.5 trillion", 1.5e12),
        ("1,5 Billiarden", 1.5e15),
        ("2 Trillionen", 2e18),
    ],
)
def test_scale_words(text: str, value: float) -> None:
    f = one(text)
    assert f.value == pytest.approx(value)
    assert f.text == text


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Die Schulden betragen 2 Billion Euro und das ist viel.", 2e12),
        ("The government spent 2 Billion dollars on this.", 2e9),
        ("Die Schulden betragen 2 billion Euro.", 2e9),
    ],
)
def test_capitalised_billion_depends_on_language(text: str, value: float) -> None:
    assert one(text).value == pytest.approx(value)


def test_capitalised_billion_with_hint() -> None:
    assert one("2 Billion", lang="de").value == pytest.approx(2e12)
    assert one("2 Billion", lang="en").value == pytest.approx(2e9)


def test_glued_m_needs_a_currency() -> None:
    assert one("$5m").value == pytest.approx(5e6)
    bare = one("a 5m wall")
    assert (bare.value, bare.text, bare.scale) == (5, "5", None)


# ---------------------------------------------------------------- units and currencies


@pytest.mark.parametrize(
    ("text", "value", "unit"),
    [
        ("5,6 Milliarden US-Dollar", 5.6e9, "USD"),
        ("9,8 Milliarden Dollar", 9.8e9, "USD"),
        ("5.6 billion dollars", 5.6e9, "USD"),
        ("5.6 billion US dollars", 5.6e9, "USD"),
        ("$5.6bn", 5.6e9, "USD"),
        ("US$ 5.6 billion", 5.6e9, "USD"),
        ("USD 5.6bn", 5.6e9, "USD"),
        ("5,6 Mrd. $", 5.6e9, "USD"),
        ("€5,6 Mio.", 5.6e6, "EUR"),
        ("EUR 1,2 Mrd.", 1.2e9, "EUR"),
        ("eine Milliarde Euro", 1e9, "EUR"),
        ("3 Mia. Franken", 3e9, "CHF"),
        ("CHF 15'000", 15e3, "CHF"),
        ("Fr. 1'234.50", 1234.5, "CHF"),
        ("5 Millionen Schweizer Franken", 5e6, "CHF"),
        ("20 Swiss francs", 20, "CHF"),
        ("£3bn", 3e9, "GBP"),
        ("300 Millionen Rubel", 3e8, "RUB"),
    ],
)
def test_currencies(text: str, value: float, unit: str) -> None:
    f = one(text)
    assert (f.value, f.unit, f.kind, f.text) == (pytest.approx(value), unit, "amount", text)


@pytest.mark.parametrize(
    ("text", "value", "unit"),
    [
        ("5,6 Prozent", 5.6, "%"),
        ("5.6%", 5.6, "%"),
        ("5,6 %", 5.6, "%"),
        ("5.6 percent", 5.6, "%"),
        ("5.6 per cent", 5.6, "%"),
        ("zwei Prozent", 2, "%"),
        ("5 Prozentpunkte", 5, "pp"),
        ("0.5 percentage points", 0.5, "pp"),
    ],
)
def test_percentages(text: str, value: float, unit: str) -> None:
    f = one(text)
    assert (f.value, f.unit, f.kind, f.text) == (pytest.approx(value), unit, "percent", text)


# ---------------------------------------------------------------- ranges


def test_range_with_own_scales_gets_the_unit_carried_back() -> None:
    low, high = figs(EV_RETURN)
    assert (low.text, low.value, low.unit) == ("457 Millionen", pytest.approx(457e6), "USD")
    assert (high.text, high.value, high.unit) == ("1,2 Milliarden Dollar", pytest.approx(1.2e9), "USD")
    assert low.low == high.low == pytest.approx(457e6)
    assert low.high == high.high == pytest.approx(1.2e9)
    assert high.hedge == "maximal" and not low.approximate


@pytest.mark.parametrize(
    ("text", "low", "high", "unit"),
    [
        ("zwischen 5,6 und 9,8 Milliarden", 5.6e9, 9.8e9, None),
        ("5,6 bis 9,8 Milliarden", 5.6e9, 9.8e9, None),
        ("5,6–9,8 Mrd.", 5.6e9, 9.8e9, None),
        ("5,6-9,8 Mrd. Dollar", 5.6e9, 9.8e9, "USD"),
        ("5.6 to 9.8 billion", 5.6e9, 9.8e9, None),
        ("between 5.6 and 9.8 billion dollars", 5.6e9, 9.8e9, "USD"),
        ("from $5.6 to $9.8 billion", 5.6e9, 9.8e9, "USD"),
        ("zwischen 457 Millionen und 1,2 Milliarden Dollar", 457e6, 1.2e9, "USD"),
        ("between 5 and 10 percent", 5, 10, "%"),
        ("5,6 bis 9,8 Milliarden Franken", 5.6e9, 9.8e9, "CHF"),
    ],
)
def test_ranges(text: str, low: float, high: float, unit: str | None) -> None:
    a, b = figs(text)
    assert (a.value, b.value) == (pytest.approx(low), pytest.approx(high))
    assert a.unit == b.unit == unit
    assert a.is_range and b.is_range
    assert (a.low, a.high) == (pytest.approx(low), pytest.approx(high))


def test_range_scale_not_carried_when_first_end_would_exceed_second() -> None:
    a, b = figs("von 500 bis 1,2 Milliarden")
    assert (a.value, b.value) == (500, pytest.approx(1.2e9))


def test_separate_figures_are_not_a_range() -> None:
    a, b = figs(EV_WEAPONS)[1:3]
    assert not a.is_range and not b.is_range
    assert (a.hedge, b.hedge) == ("mindestens", "bis zu")


def test_year_ranges() -> None:
    assert [f.kind for f in figs("seit 2020 bis 2023")] == ["year", "year"]
    assert [f.kind for f in figs("im Zeitraum 2020–2023")] == ["year", "year"]
    assert [f.kind for f in figs("von 500 bis 1200 Soldaten")] == ["amount", "amount"]


# ---------------------------------------------------------------- years, dates, ages


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("seit 2023", "year"),
        ("im Sommer 2024", "year"),
        ("im Jahr 2024", "year"),
        ("in 2023", "year"),
        ("since 2023", "year"),
        ("in summer 2024", "year"),
        ("Ende 2024", "year"),
        ("mid-2024", "year"),
        ("Q3 2024", "year"),
        ("im September 2025", "year"),
        ("die Studie (2023)", "year"),
        ("rund 2000 nordkoreanische Soldaten", "amount"),
        ("2000 soldiers", "amount"),
        ("vor 2000 Zuschauern", "amount"),
        ("2000 Dollar", "amount"),
        ("mehr als 2024 Menschen", "amount"),
    ],
)
def test_years_vs_amounts(text: str, kind: str) -> None:
    f = one(text)
    assert f.kind == kind
    assert f.unit == ("year" if kind == "year" else f.unit)


@pytest.mark.parametrize(
    "text",
    ["2025-09-18", "18.09.2025", "18. September 2025", "18 September 2025", "September 18, 2025",
     "09/18/2025", "am 18. Sept. 2025"],
)
def test_dates_give_only_their_year(text: str) -> None:
    f = one(text)
    assert (f.kind, f.value, f.text) == ("year", 2025, "2025")


def test_date_without_year_is_not_a_figure() -> None:
    assert figs("am 18. September traf er ihn") == []


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("Wladimir Putin (72)", 72),
        ("Kim Jong Un (41) und", 41),
        ("der 72-jährige Putin", 72),
        ("Der 72-Jährige sagte", 72),
        ("Putin ist 72 Jahre alt", 72),
        ("the 72-year-old leader", 72),
        ("Putin is 72 years old", 72),
        ("Putin, 72, said", 72),
        ("aged 72", 72),
        ("im Alter von 72 Jahren", 72),
    ],
)
def test_ages(text: str, age: int) -> None:
    f = one(text)
    assert (f.kind, f.unit, f.value) == ("age", "age", age)


# ---------------------------------------------------------------- hedges


@pytest.mark.parametrize(
    ("text", "hedge"),
    [
        ("rund 15'000 Soldaten", "rund"),
        ("mindestens 5,6 Milliarden", "mindestens"),
        ("bis zu 9,8 Milliarden", "bis zu"),
        ("etwa 25 Millionen", "etwa"),
        ("fast 25 Millionen", "fast"),
        ("ca. 25 Millionen", "ca."),
        ("about 25 million", "about"),
        ("around 2,000 soldiers", "around"),
        ("at least $5.6 billion", "at least"),
        ("up to 9.8 billion", "up to"),
        ("more than 15,000", "more than"),
        ("~5%", "~"),
    ],
)
def test_hedges_are_flagged_but_do_not_change_the_value(text: str, hedge: str) -> None:
    f = one(text)
    assert f.approximate and f.hedge == hedge
    plain = one(text[text.index(f.text):])
    assert f.value == plain.value and not plain.approximate


# ---------------------------------------------------------------- not figures, ordinals, words


@pytest.mark.parametrize(
    "text",
    [
        "Nordkorea liefert Waffen [1].",
        "Russia pays little [2][3].",
        "Siehe [1, 2] und [^4].",
        "1. Nordkorea\n2. Russland",
        "F-16 und Su-35",
        "COVID-19",
        "G7",
        "um 14:30",
        "um 14.30 Uhr",
        "Millionen Artilleriegranaten",
        "one of the leaders",
        "an Millionen Kunden",
        "ein Millionen-Deal",
    ],
)
def test_not_figures(text: str) -> None:
    assert figs(text) == []


def test_citation_markers_next_to_figures() -> None:
    f = one("North Korea sent 15,000 soldiers [1][2].")
    assert f.value == 15000


@pytest.mark.parametrize(
    ("text", "value", "span"),
    [("der 3. Versuch", 3, "3."), ("the 3rd attempt", 3, "3rd"), ("im 2. Quartal", 2, "2.")],
)
def test_ordinals(text: str, value: int, span: str) -> None:
    f = one(text)
    assert (f.kind, f.value, f.text) == ("ordinal", value, span)


def test_sentence_final_number_is_not_an_ordinal() -> None:
    f = one("Es waren 3. Danach kam nichts.")
    assert (f.kind, f.text) == ("amount", "3")


@pytest.mark.parametrize(
    ("text", "value"),
    [("zwei Soldaten", 2), ("zwölf", 12), ("two soldiers", 2), ("twelve", 12),
     ("zwei Millionen", 2e6), ("a million people", 1e6), ("one billion dollars", 1e9)],
)
def test_number_words(text: str, value: float) -> None:
    assert one(text).value == pytest.approx(value)


# ---------------------------------------------------------------- seed article


def test_seed_article_figures() -> None:
    text = SEED.read_text(encoding="utf-8")
    got = [(f.kind, f.value, f.unit, f.text) for f in figs(text)]
    assert got == [
        ("year", 2025, "year", "2025"),
        ("age", 72, "age", "72"),
        ("age", 41, "age", "41"),
        ("year", 2023, "year", "2023"),
        ("amount", pytest.approx(5.6e9), "USD", "5,6 Milliarden US-Dollar"),
        ("amount", pytest.approx(9.8e9), "USD", "9,8 Milliarden Dollar"),
        ("amount", 15000, None, "15'000"),
        ("amount", pytest.approx(457e6), "USD", "457 Millionen"),
        ("amount", pytest.approx(1.2e9), "USD", "1,2 Milliarden Dollar"),
        ("amount", 2000, None, "2000"),
        ("age", 72, "age", "72"),
        ("year", 2024, "year", "2024"),
    ]


# ---------------------------------------------------------------- figures_match


def _f(text: str) -> Figure:
    return extract_figures(text)[-1]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("5.6 billion dollars", "5,6 Milliarden US-Dollar", True),
        ("5.6 billion", "5,6 Milliarden US-Dollar", True),  # missing unit is compatible
        ("5.6 billion euros", "5,6 Milliarden US-Dollar", False),
        ("5.6 million", "5,6 Milliarden", False),
        ("15,000", "rund 15'000", True),
        ("5'600 Millionen", "5,6 Mrd.", True),
        ("since 2023", "seit 2023", True),
        ("2023 soldiers", "seit 2023", False),  # a year never matches an amount
        ("Putin (72)", "72 Soldaten", False),  # an age never matches an amount
        ("the 72-year-old", "Putin (72)", True),
        ("25 Prozent", "25 percent", True),
        ("25 Prozent", "25 Prozentpunkte", False),
        ("201 soldiers", "200 Soldaten", False),  # whole counts: no tolerance
        ("in 2023", "seit 2024", False),  # years: no tolerance
        ("1.2 billion", "1'200'000'000", True),
    ],
)
def test_figures_match(a: str, b: str, expected: bool) -> None:
    assert figures_match(_f(a), _f(b)) is expected


def test_figures_match_tolerance() -> None:
    assert figures_match(_f("5.62 billion"), _f("5,6 Milliarden"))  # 0.36 % off
    assert not figures_match(_f("5.62 billion"), _f("5,6 Milliarden"), rel_tol=0.001)
    assert not figures_match(_f("5.65 billion"), _f("5,6 Milliarden"))


# ---------------------------------------------------------------- unsupported_figures


@pytest.mark.parametrize(
    ("claim", "evidence"),
    [
        ("North Korea delivered weapons worth at least 5.6 billion US dollars [1].", EV_WEAPONS),
        (
            (
                "Since 2023, North Korea has supplied weapons worth at least $5.6bn, possibly "
                "up to $9.8bn [1]."
            ),
            EV_WEAPONS,
        ),
        ("North Korea sent around 15,000 soldiers [1].", EV_WEAPONS),
        (
            (
                "Nordkorea hat seit 2023 Waffen im Wert von mindestens 5,6 Milliarden Dollar "
                "geliefert [1]."
            ),
            EV_WEAPONS,
        ),
        ("Rund 15 000 nordkoreanische Soldaten kämpfen im Ukraine-Krieg.", EV_WEAPONS),
        ("Russia gave back only 457 million to 1.2 billion dollars in return [2].", EV_RETURN),
        ("Moskau lieferte Gegenleistungen im Wert von 457 Mio. bis 1,2 Mrd. Dollar.", EV_RETURN),
        ("Russia's return is worth at most $1.2 billion.", EV_RETURN),
        ("South Korea's NIS estimates that about 2,000 North Korean soldiers have died [3].",
         EV_DEAD),
        ("Putin (72) and Kim Jong Un (41) cooperate.", EV_LEADERS),
        ("The 72-year-old Putin and Kim, 41, cooperate.", EV_LEADERS),
        ("Putin and Kim sealed a strategic partnership in summer 2024 [4].", EV_SUMMER),
        ("Im Sommer 2024 besiegelten Putin und Kim eine Partnerschaft.", EV_SUMMER),
        ("The study was published on September 18, 2025.", SEED.read_text(encoding="utf-8")),
        ("1. North Korea supplies weapons [1].\n2. Russia pays little [2].", EV_WEAPONS),
    ],
)
def test_supported_claims(claim: str, evidence: str) -> None:
    assert unsupported_figures(claim, evidence) == []


@pytest.mark.parametrize(
    ("claim", "evidence", "flagged"),
    [
        ("The war displaced about 25 million people [1].", EV_WEAPONS, [25e6]),
        ("North Korea delivered weapons worth 5.6 million dollars [1].", EV_WEAPONS, [5.6e6]),
        ("Nordkorea lieferte Waffen für 5,6 Millionen Dollar.", EV_WEAPONS, [5.6e6]),
        ("North Korea delivered weapons worth 5.6 billion euros [1].", EV_WEAPONS, [5.6e9]),
        ("North Korea delivered weapons worth up to 9.6 billion dollars.", EV_WEAPONS, [9.6e9]),
        ("North Korea sent 1,500 soldiers.", EV_WEAPONS, [1500]),
        ("Since 2022, North Korea has delivered weapons.", EV_WEAPONS, [2022]),
        ("Russia returned goods worth 457 billion dollars.", EV_RETURN, [457e9]),
        ("Russia returned goods worth about 800 million dollars.", EV_RETURN, [800e6]),
        ("Russland lieferte Güter im Wert von 1,2 Millionen Dollar.", EV_RETURN, [1.2e6]),
        ("About 3,000 North Korean soldiers have died.", EV_DEAD, [3000]),
        ("Putin (71) and Kim Jong Un (41) cooperate.", EV_LEADERS, [71]),
        ("In summer 2023 they sealed a partnership.", EV_SUMMER, [2023]),
        ("In 2000, North Korea changed course.", EV_DEAD, [2000]),
        ("Exports rose by 25 percent [2].", EV_WEAPONS, [25]),
    ],
)
def test_unsupported_claims_are_flagged(claim: str, evidence: str, flagged: list[float]) -> None:
    missing = unsupported_figures(claim, evidence)
    assert [f.value for f in missing] == pytest.approx(flagged)
    for f in missing:
        assert claim[f.start:f.end] == f.text


def test_value_inside_an_evidence_range_is_not_supported() -> None:
    missing = unsupported_figures("Russia paid about 800 million dollars.", EV_RETURN)
    assert [f.value for f in missing] == pytest.approx([800e6])


def test_year_in_claim_not_supported_by_same_digits_as_amount() -> None:
    missing = unsupported_figures("Since 2000 North Korea has lost soldiers.", EV_DEAD)
    assert [(f.kind, f.value) for f in missing] == [("year", 2000)]
