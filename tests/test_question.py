"""Question analysis: language, focus term, follow-up condensing; the previous ranking's reading."""
from __future__ import annotations

import pytest

from app.answer.analysis import (
    analyse,
    condense,
    content_terms,
    detect_language,
    focus_term,
    is_follow_up,
    strip_connective,
)
from evals.previous_ranking import old_reading

HISTORY = [{"role": "user", "content": "Wie viele Waffen hat Nordkorea an Russland geliefert?"},
           {"role": "assistant", "content": "Waffen im Wert von 5,6 Milliarden Dollar [1]."}]


# ---- language --------------------------------------------------------------------------------

@pytest.mark.parametrize("question,lang", [
    ("Wie viele nordkoreanische Soldaten kämpfen im Ukraine-Krieg?", "de"),
    ("Wer ist Kim Jong Un?", "de"),
    ("Warum ist Kim enttäuscht?", "de"),
    ("Seit wann liefert Nordkorea Waffen?", "de"),
    ("Wo liegt Pjöngjang?", "de"),
    ("Wie hoch ist die Inflation?", "de"),
    ("Und wie viel kam von Russland zurück?", "de"),
    ("Welche Gegenleistungen gibt es?", "de"),
    ("How many North Korean soldiers have died?", "en"),
    ("What is the population of North Korea?", "en"),
    ("Who is the author of the study?", "en"),
    ("Why is Kim disappointed?", "en"),
    ("When did Putin and Kim sign the partnership?", "en"),
    ("How much money did Russia pay?", "en"),
])
def test_detect_language(question: str, lang: str) -> None:
    assert detect_language(question) == lang
    assert analyse(question).language == lang


def test_language_defaults_to_english_without_evidence() -> None:
    assert detect_language("Kim Jong Un?") == "en"
    assert detect_language("") == "en"
    assert detect_language("1234") == "en"


def test_umlauts_count_as_german_evidence() -> None:
    assert detect_language("Pjöngjang Südkorea?") == "de"


@pytest.mark.parametrize("question", ["Was sagt Putin?", "Was macht Kim?", "Was will Kim?"])
def test_german_was_questions(question: str) -> None:
    assert detect_language(question) == "de"


# ---- numeric (the previous ranking's reading, kept for comparison) --------------------------

@pytest.mark.parametrize("question,numeric", [
    ("Wie viele nordkoreanische Soldaten kämpfen im Ukraine-Krieg?", True),
    ("Wie viel kam von Russland zurück?", True),
    ("Wie alt ist Putin?", True),
    ("Wie hoch ist die Inflation?", True),
    ("Seit wann liefert Nordkorea Waffen?", True),
    ("In welchem Jahr wurde die Partnerschaft besiegelt?", True),
    ("Welcher Betrag wurde gezahlt?", True),
    ("Wie lange dauert der Krieg schon?", True),
    ("How many North Korean soldiers have died?", True),
    ("How much money did Russia pay?", True),
    ("How old is Kim Jong Un?", True),
    ("When did Putin and Kim sign the partnership?", True),
    ("What is the population of North Korea?", True),
    ("What percentage of the weapons were shells?", True),
    ("What year did the partnership start?", True),
    ("Wer ist Kim Jong Un?", False),
    ("Warum ist Kim enttäuscht?", False),
    ("Welche Waffen liefert Nordkorea?", False),
    ("Was sagt die Studie über Kim?", False),
    ("Who wrote the study?", False),
    ("Why is Kim disappointed?", False),
    ("Did Russia pay?", False),
])
def test_numeric_detection(question: str, numeric: bool) -> None:
    assert old_reading(analyse(question)).numeric is numeric


@pytest.mark.parametrize("question", ["Wieviele Soldaten sind gefallen?",
                                      "Wieviel Geld kam zurück?",
                                      "Was ist die Einwohnerzahl Nordkoreas?"])
def test_numeric_detection_spelling_variants(question: str) -> None:
    assert old_reading(analyse(question)).numeric is True


@pytest.mark.parametrize("question,kinds", [
    ("Wie alt ist Putin?", {"age", "amount"}),
    ("How old is Kim Jong Un?", {"age", "amount"}),
    ("Seit wann liefert Nordkorea Waffen?", {"year"}),
    ("When did Putin and Kim sign the partnership?", {"year"}),
    ("Wie viel Prozent der Bevölkerung profitieren?", {"percent"}),
    ("Wie viele Soldaten kämpfen?", None),
])
def test_figure_kinds(question: str, kinds: set[str] | None) -> None:
    got = old_reading(analyse(question)).figure_kinds
    assert (set(got) if got is not None else None) == kinds


# ---- focus -----------------------------------------------------------------------------------

@pytest.mark.parametrize("question,focus", [
    ("Wie viele nordkoreanische Soldaten kämpfen im Ukraine-Krieg?", "soldaten"),
    ("Wie viele Panzer hat Russland geliefert?", "panzer"),
    ("How many North Korean soldiers have died?", "soldiers"),
    ("How many tanks did Russia deliver?", "tanks"),
    ("What is the population of North Korea?", "population"),
    ("How many inhabitants does North Korea have?", "inhabitants"),
    ("Wie hoch ist die Inflation?", "inflation"),
    ("How old is Kim Jong Un?", "kim"),
    ("Wie alt ist Putin?", "putin"),
    ("Wer ist Kim Jong Un?", None),
    ("Warum ist Kim enttäuscht?", None),
    ("Welche Waffen liefert Nordkorea?", None),
])
def test_focus_term(question: str, focus: str | None) -> None:
    assert focus_term(question) == focus
    assert analyse(question).focus == focus


@pytest.mark.parametrize("question,focus", [
    ("How many North Korean soldiers fought in Kursk?", "soldiers"),
    ("How many interceptions did Josh Norman score?", "interceptions"),
    ("How many forced fumbles had Thomas Davis?", "fumbles"),
    ("How many species of trees are there?", "species"),
    ("What is the boiling point of water?", "point"),
    ("What was the price of a ticket?", "price"),
])
def test_focus_from_grammar_not_word_lists(question: str, focus: str) -> None:
    # no verb list and no named concepts: function words, "-ed" verbs and the word cap end X
    assert focus_term(question) == focus


def test_generic_count_words_are_not_the_focus() -> None:
    # "how many people": 'people' says nothing about what the sources must mention
    assert focus_term("How many people live in North Korea?") != "people"
    assert focus_term("Wie viele Menschen leben in Nordkorea?") != "menschen"


def test_content_terms() -> None:
    assert content_terms("Wie viele nordkoreanische Soldaten kämpfen im Ukraine-Krieg?") == [
        "nordkoreanische", "soldaten", "kämpfen", "ukraine-krieg"]
    assert content_terms("How many North Korean soldiers have died in 2024?") == [
        "north", "korean", "soldiers", "died"]
    assert content_terms("Kim's Partnerschaft, Kim's Plan") == ["kim", "partnerschaft", "plan"]
    assert content_terms("Grösse und Straße") == ["grösse", "strasse"]


# ---- follow-ups and condensing ---------------------------------------------------------------

@pytest.mark.parametrize("question,follow", [
    ("Und wie viel kam von Russland zurück?", True),
    ("And what about Russia?", True),
    ("Und davon?", True),
    ("Wie viele davon sind gefallen?", True),
    ("How many of them have died?", True),
    ("What about their losses?", True),
    ("Wie viele nordkoreanische Soldaten kämpfen im Ukraine-Krieg?", False),
    ("How many North Korean soldiers have died?", False),
    ("What is the population of North Korea?", False),
    ("Wer ist Kim Jong Un?", False),
])
def test_is_follow_up(question: str, follow: bool) -> None:
    assert is_follow_up(question) is follow


def test_condense_follow_up_borrows_previous_question() -> None:
    c = condense("Und wie viel kam von Russland zurück?", HISTORY)
    assert c.own == "Wie viel kam von Russland zurück?"
    assert c.previous == HISTORY[0]["content"]
    # enough own content words: the lexical query stays the new question
    assert c.text == c.own


def test_condense_short_follow_up_appends_previous_question() -> None:
    c = condense("Und davon?", HISTORY)
    assert c.own == "Davon?"
    assert c.previous == HISTORY[0]["content"]
    assert c.text == f"Davon? {HISTORY[0]['content']}"


def test_condense_uses_the_latest_user_turn() -> None:
    history = HISTORY + [{"role": "user", "content": "Wie viele Soldaten sind gefallen?"},
                         {"role": "assistant", "content": "Rund 2000 [1]."}]
    c = condense("Und davon?", history)
    assert c.previous == "Wie viele Soldaten sind gefallen?"


def test_condense_standalone_ignores_history() -> None:
    q = "What is the population of North Korea?"
    c = condense(q, HISTORY)
    assert (c.own, c.text, c.previous) == (q, q, None)


def test_condense_without_history_or_user_turns() -> None:
    assert condense("Und davon?", None).previous is None
    assert condense("Und davon?", []).previous is None
    c = condense("Und davon?", [{"role": "assistant", "content": "Rund 2000 [1]."}])
    assert c.previous is None and c.text == "Davon?"


def test_strip_connective() -> None:
    assert strip_connective("Und wie viel kam zurück?") == "Wie viel kam zurück?"
    assert strip_connective("and, what about Russia?") == "What about Russia?"
    assert strip_connective("Undank ist der Welten Lohn?") == "Undank ist der Welten Lohn?"
    assert strip_connective("Und") == "Und"
    assert strip_connective("Wie viele?") == "Wie viele?"
