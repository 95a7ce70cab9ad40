"""The eval suite's own expected-figure matcher, independent of the app's figure code."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.matcher import Figure, expected_figure, expected_stated, parse_figures

SEED = Path(__file__).resolve().parents[1] / "evals" / "data" / "seed_questions.jsonl"
ROWS = [json.loads(line) for line in SEED.read_text(encoding="utf-8").splitlines() if line.strip()]
SEED_FIGURES = sorted({text for row in ROWS
                       for text in row.get("expected_figures", []) + row.get("forbidden_figures", [])})


def first(text: str) -> Figure:
    figure = expected_figure(text)
    assert figure is not None, text
    return figure


# ------------------------------------------------------------------ parsing: value, unit, year
@pytest.mark.parametrize(("text", "values", "unit", "is_year"), [
    ("rund 15'000 Soldaten", {15000.0}, None, False),
    ("15’000", {15000.0}, None, False),
    ("15 000", {15000.0}, None, False),
    ("15.000", {15000.0, 15.0}, None, False),
    ("2,500", {2500.0, 2.5}, None, False),
    ("5,6", {5.6}, None, False),
    ("5.6", {5.6}, None, False),
    ("0,500", {0.5}, None, False),
    ("1.250,50 €", {1250.5}, "EUR", False),
    ("EUR 1,250.50", {1250.5}, "EUR", False),
    ("1.250.000", {1250000.0}, None, False),
    ("-3,2 %", {-3.2}, "%", False),
    ("−3,2 Prozent", {-3.2}, "%", False),
    ("+4,1 percent", {4.1}, "%", False),
    ("5,6 Milliarden US-Dollar", {5.6e9}, "USD", False),
    ("5.6 billion US dollars", {5.6e9}, "USD", False),
    ("5,6 Mrd. $", {5.6e9}, "USD", False),
    ("$5.6 billion", {5.6e9}, "USD", False),
    ("457 Millionen", {4.57e8}, None, False),
    ("1,2 Mio. Franken", {1.2e6}, "CHF", False),
    ("15 Tausend", {15000.0}, None, False),
    ("€ 120", {120.0}, "EUR", False),
    ("CHF 20", {20.0}, "CHF", False),
    ("Putin (72)", {72.0}, None, False),
    ("Kim Jong Un (41)", {41.0}, None, False),
    ("seit 2023", {2023.0}, None, True),
    ("Sommer 2024", {2024.0}, None, True),
    ("im Jahr 2024", {2024.0}, None, True),
    ("in the summer of 2024", {2024.0}, None, True),
    ("am 12.03.2024", {2024.0}, None, True),
    ("2019", {2019.0}, None, True),
    ("rund 2000 Soldaten", {2000.0}, None, False),
    ("2.000 Soldaten", {2000.0, 2.0}, None, False),
    ("drei Jahre lang", {3.0}, "year_duration", False),
    ("for 3 years", {3.0}, "year_duration", False),
    ("eine Woche", {1.0}, "week", False),
    ("zwölf Monate", {12.0}, "month", False),
    ("5 Werktage", {5.0}, "working_day", False),
    ("5 business days", {5.0}, "working_day", False),
    ("5000 Betriebsstunden", {5000.0}, "hour", False),
    ("3 Std.", {3.0}, "hour", False),
    ("90 min", {90.0}, "minute", False),
    ("30 s", {30.0}, "second", False),
    ("3 kW", {3.0}, "kW", False),
    ("3 kWh", {3.0}, "kWh", False),
    ("2 MW", {2.0}, "MW", False),
    ("1,5 GWh", {1.5}, "GWh", False),
    ("20°C", {20.0}, "°C", False),
    ("20 degrees Celsius", {20.0}, "°C", False),
    ("4 K", {4.0}, "K", False),
    ("6 bar", {6.0}, "bar", False),
    ("85 dB(A)", {85.0}, "dB", False),
    ("40 Kilogramm", {40.0}, "kg", False),
    ("7 Tonnen", {7.0}, "t", False),
    ("5 litres", {5.0}, "l", False),
    ("5 m³", {5.0}, "m3", False),
    ("5 cubic metres", {5.0}, "m3", False),
    ("12 mm", {12.0}, "mm", False),
    ("30 cm", {30.0}, "cm", False),
    ("100 Meter", {100.0}, "m", False),
    ("42 Kilometer", {42.0}, "km", False),
    ("16 A", {16.0}, "A", False),
    ("230 Volt", {230.0}, "V", False),
    ("12 ct/kWh", {12.0}, "ct/kWh", False),
    ("12 Cent pro Kilowattstunde", {12.0}, "ct/kWh", False),
    ("0,30 Euro pro Kilometer", {0.3}, "EUR/km", False),
    ("0.30 EUR per km", {0.3}, "EUR/km", False),
])
def test_parse_first_figure(text: str, values: set[float], unit: str | None,
                            is_year: bool) -> None:
    figure = first(text)
    assert figure.values == frozenset(values)
    assert (figure.unit, figure.is_year) == (unit, is_year)


@pytest.mark.parametrize(("text", "expected"), [
    ("zwischen 5,6 und 9,8 Milliarden", [(5.6e9, None), (9.8e9, None)]),
    ("5.6 to 9.8 billion dollars", [(5.6e9, "USD"), (9.8e9, "USD")]),
    ("457 Millionen bis maximal 1,2 Milliarden Dollar", [(4.57e8, "USD"), (1.2e9, "USD")]),
    ("zwei bis drei Wochen", [(2.0, "week"), (3.0, "week")]),
    ("seit 2023 bis zu 9,8 Milliarden Dollar", [(2023.0, None), (9.8e9, "USD")]),
])
def test_ranges_share_scale_and_unit(text: str, expected: list[tuple[float, str | None]]) -> None:
    got = [(max(figure.values), figure.unit) for figure in parse_figures(text)]
    assert got == [(pytest.approx(value, rel=1e-9), unit) for value, unit in expected]


@pytest.mark.parametrize("text", ["ein Mann", "CO2 und H2O", "siehe [1] und [2]", "keine Zahl"])
def test_no_figure(text: str) -> None:
    assert expected_figure(text) is None


def test_spans_point_at_the_matched_characters() -> None:
    text = "Nordkorea hat seit 2023 Waffen für 5,6 Mrd. $ geliefert, rund 15'000 Soldaten."
    figures = parse_figures(text)
    assert [figure.text for figure in figures] == ["seit 2023", "5,6 Mrd. $", "15'000"]
    assert all(text[figure.start:figure.end] == figure.text for figure in figures)


# ------------------------------------------------------------------ matching
@pytest.mark.parametrize(("expected", "answer"), [
    ("15'000", "About 15,000 soldiers."),
    ("15'000", "Rund 15.000 Soldaten."),
    ("15'000", "rund 15 000 Soldaten"),
    ("15.000", "15’000"),
    ("2000", "About 2,000, according to the NIS."),
    ("2000", "Rund 2000."),
    ("5,6 Milliarden US-Dollar", "at least 5.6 billion US dollars"),
    ("5,6 Milliarden US-Dollar", "mindestens 5,6 Mrd. $"),
    ("5,6 Milliarden US-Dollar", "worth $5.6 billion"),
    ("5,6 Milliarden US-Dollar", "5.6 to 9.8 billion dollars"),
    ("5,6 Milliarden US-Dollar", "zwischen 5,6 und 9,8 Milliarden Dollar"),
    ("9,8 Milliarden Dollar", "possibly up to 9.8 billion dollars"),
    ("457 Millionen", "457 million dollars"),
    ("457 Millionen", "worth 457 million to at most 1.2 billion dollars"),
    ("1,2 Milliarden Dollar", "1.2 billion USD"),
    ("1,2 Milliarden Dollar", "457 million to at most 1.2 billion dollars"),
    ("20 Milliarden Dollar", "20 billion US dollars"),
    ("50 billion dollars", "50 Milliarden Dollar"),
    ("Kim Jong Un (41)", "Kim Jong Un is 41 years old."),
    ("Putin (72)", "Putin ist 72 Jahre alt."),
    ("seit 2023", "Since 2023."),
    ("seit 2023", "Das geschah 2023."),
    ("Sommer 2024", "In the summer of 2024."),
    ("Sommer 2024", "im Jahr 2024"),
    ("15 Tage", "within 15 days"),
    ("15 Tage", "15-Tage-Frist"),
    ("10 Werktage", "ten working days"),
    ("drei Jahre lang", "for 3 years"),
    ("3,5 %", "3.5 percent"),
    ("3,5 %", "3,5 Prozent"),
    ("3,5 %", "3.5 per cent"),
    ("-3,2 %", "ein Minus von −3,2 Prozent"),
    ("1.250,50 €", "EUR 1,250.50"),
    ("120 Euro", "€ 120"),
    ("2,500 Euro", "2500 EUR"),
    ("12 ct/kWh", "12 Cent pro Kilowattstunde"),
    ("0,30 Euro pro Kilometer", "0.30 EUR per km"),
    ("20 °C", "20 Grad Celsius"),
    ("5000 Betriebsstunden", "5,000 operating hours"),
    ("3 kW", "a 3 kW heat pump"),
    ("5 m³", "5 cubic metres"),
    ("2 Stunden", "two hours"),
])
def test_expected_is_stated(expected: str, answer: str) -> None:
    assert expected_stated(expected, answer) is True


@pytest.mark.parametrize(("expected", "answer"), [
    ("15'000", "About 20,000 soldiers."),
    ("457 Millionen", "4570 Millionen"),
    ("457 Millionen", "4,57 Milliarden"),
    ("457 Millionen", "457 dollars"),
    ("5,6 Milliarden US-Dollar", "5.6 million US dollars"),
    ("5,6 Milliarden US-Dollar", "5.6 billion euros"),
    ("5,6 Milliarden US-Dollar", "5.6 billion"),
    ("1,2 Milliarden Dollar", "12 billion dollars"),
    ("15 Tage", "15 Wochen"),
    ("15 Tage", "15 Werktage"),
    ("15 Tage", "15 Soldaten"),
    ("10 days", "10 minutes"),
    ("3 kW", "3 kWh"),
    ("3 MW", "3 kW"),
    ("3,5 %", "3.5 EUR"),
    ("3,5 %", "3,5 Prozentpunkte"),
    ("3,5 %", "35 %"),
    ("-3,2 %", "3,2 %"),
    ("seit 2023", "rund 2023 Soldaten"),
    ("seit 2023", "2,023 soldiers"),
    ("seit 2023", "seit 2022"),
    ("Sommer 2024", "2024 Euro"),
    ("2.000 Soldaten", "im Jahr 2000"),
    ("drei Jahre lang", "seit 2003"),
    ("drei Jahre lang", "drei Monate"),
    ("Putin (72)", "Putin ist 71 Jahre alt."),
    ("20 °C", "20 °F"),
    ("12 ct/kWh", "12 Cent"),
    ("0,30 Euro pro Kilometer", "0,30 Euro"),
    ("5 m", "5 mm"),
    ("keine Zahl", "15'000 Soldaten"),
])
def test_expected_is_not_stated(expected: str, answer: str) -> None:
    assert expected_stated(expected, answer) is False


# ------------------------------------------------------------------ the seed set
@pytest.mark.parametrize("text", SEED_FIGURES)
def test_every_seed_figure_parses(text: str) -> None:
    figure = first(text)
    assert figure.values and text[figure.start:figure.end] == figure.text


@pytest.mark.parametrize("row", [row for row in ROWS if row.get("answerable")
                                 and row.get("expected_figures")], ids=lambda row: row["id"])
def test_seed_references_state_their_figures(row: dict) -> None:
    for text in row["expected_figures"]:
        assert expected_stated(text, row["reference"]), text
    for text in row.get("forbidden_figures", []):
        assert not expected_stated(text, row["reference"]), text
