"""The chat's HTML and Markdown from plain answer data, and document titles: no browser needed."""
from __future__ import annotations

from app.ui_render import (
    answer_html,
    conversation_html,
    conversation_markdown,
    source_html,
    turn_citations,
)
from app.ui_text import pick_language
from ingest.titles import document_title

TEXT = "Erster Absatz.\n\nDie Dichtung ist nach 2000 Betriebsstunden zu ersetzen. Danach nicht."
ANSWER = {
    "answer": "„Erster Absatz.“ [1] „Die Dichtung ist nach 2000 Betriebsstunden zu ersetzen.“ [1]",
    "kind": "candidates", "conflict": False, "notice": "", "unverified": [],
    "citations": [{"n": 1, "source": "a.txt", "start": 0, "end": 14, "quote": "Erster Absatz."},
                  {"n": 1, "source": "a.txt", "start": 16, "end": 71,
                   "quote": TEXT[16:71]}],
    "short_answer": None}


def test_each_marker_opens_its_own_quote() -> None:
    html = answer_html(3, ANSWER, {"a.txt": "Handbuch"}, "de")
    assert 'data-turn="3" data-cite="0"' in html and 'data-turn="3" data-cite="1"' in html
    assert "[1]" not in html  # every marker became a chip
    assert "Keine eindeutige Antwort" in html and "Quellen: Handbuch" in html


def test_a_short_answer_has_its_own_chip_and_removed_statements_say_why() -> None:
    answer = {**ANSWER, "kind": "answered", "unverified": ["Sie hält 5000 Stunden."],
              "short_answer": {"text": "2000 Betriebsstunden", "n": 1, "source": "a.txt",
                               "start": 38, "end": 58, "method": "span"}}
    cites = turn_citations(answer)
    assert cites[-1]["short"] and cites[-1]["quote"] == "2000 Betriebsstunden"
    html = answer_html(0, answer, {}, "en")
    assert f'data-cite="{len(cites) - 1}"' in html and "In short" in html
    assert "<details" in html and "1 statement(s) removed" in html and "5000" in html


def test_everything_is_escaped() -> None:
    hostile = {**ANSWER, "answer": "<img src=x onerror=alert(1)> [1]"}
    html = conversation_html([{"q": "<script>x</script>", "answer": hostile,
                               "titles": {"a.txt": '"><b>'}}], "de")
    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html


def test_source_view_marks_exactly_the_span() -> None:
    doc = {"source": "a.txt", "text": TEXT, "metadata": {"title": "Handbuch", "date": "2024-01-02"}}
    html = source_html(doc, ANSWER["citations"][1], "de")
    assert f'<mark id="beleg-hit" data-start="16" data-end="71">{TEXT[16:71]}</mark>' in html
    assert "<h3>Handbuch</h3>" in html and "2024-01-02" in html and "Zeichen 16–71" in html
    assert '<span class="para"></span>' in html  # the paragraph break is kept
    assert "nicht mehr gespeichert" in source_html(None, ANSWER["citations"][0], "de")


def test_markdown_export_carries_every_quote() -> None:
    md = conversation_markdown([{"q": "Wann?", "answer": ANSWER, "titles": {}}], "de")
    assert "**Frage:** Wann?" in md and "«Erster Absatz.»" in md and "a.txt, 16–71" in md


def test_language_and_titles() -> None:
    assert pick_language("de-CH,de;q=0.9,en;q=0.8") == "de"
    assert pick_language("fr-FR,en;q=0.5") == "en" and pick_language(None) == "en"
    assert document_title("# Handbuch\n\nText.") == "Handbuch"
    assert document_title("x", {"title": " Bericht "}) == "Bericht"
    long = "Ein sehr langer erster Satz " * 10 + ". Zweiter Satz."
    assert document_title(long).endswith("…") and len(document_title(long)) <= 101
