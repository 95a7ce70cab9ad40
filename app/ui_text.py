"""The web chat's words in German and English; the page follows the browser, with a switch."""
from __future__ import annotations

LANGUAGES = ("de", "en")

_TEXT: dict[str, dict[str, str]] = {
    "title": {"de": "beleg – Antworten mit Belegen", "en": "beleg – answers with sources"},
    "question": {"de": "Frage", "en": "Question"},
    "placeholder": {"de": "Fragen Sie Ihre Dokumente …", "en": "Ask your documents …"},
    "ask": {"de": "Fragen", "en": "Ask"},
    "stop": {"de": "Stopp", "en": "Stop"},
    "clear": {"de": "Neues Gespräch", "en": "New conversation"},
    "conversations": {"de": "Frühere Gespräche", "en": "Earlier conversations"},
    "export": {"de": "Als Markdown", "en": "As Markdown"},
    "collection": {"de": "Sammlung", "en": "Collection"},
    "language": {"de": "Sprache", "en": "Language"},
    "chat_tab": {"de": "Gespräch", "en": "Conversation"},
    "docs_tab": {"de": "Dokumente", "en": "Documents"},
    "source": {"de": "Quelle", "en": "Source"},
    "source_hint": {"de": "Klicken Sie auf eine Quellennummer in einer Antwort, um die Stelle "
                            "im Dokument zu sehen.",
                    "en": "Click a source number in an answer to see the passage in its "
                          "document."},
    "sources": {"de": "Quellen", "en": "Sources"},
    "searching": {"de": "Suche Quellen …", "en": "Searching the sources …"},
    "writing": {"de": "Antwort wird geprüft …", "en": "Checking the answer …"},
    "stopped": {"de": "Angehalten.", "en": "Stopped."},
    "answered": {"de": "Antwort aus den Quellen", "en": "Answer from the sources"},
    "candidates": {"de": "Keine eindeutige Antwort – die nächsten Stellen",
                   "en": "No single clear answer – the closest passages"},
    "refused": {"de": "Die Dokumente beantworten das nicht",
                "en": "The documents do not answer this"},
    "conflict": {"de": "Die Quellen widersprechen sich", "en": "The sources disagree"},
    "short_answer": {"de": "Kurz", "en": "In short"},
    "removed": {"de": "{n} Aussage(n) entfernt: im zitierten Text nicht belegt",
                "en": "{n} statement(s) removed: not supported by the cited text"},
    "passage": {"de": "Zeichen {start}–{end}", "en": "characters {start}–{end}"},
    "gone": {"de": "Dieses Dokument ist nicht mehr gespeichert.",
             "en": "This document is no longer stored."},
    "upload": {"de": "Dateien hierher ziehen (.txt .md .html .pdf .docx)",
               "en": "Drop files here (.txt .md .html .pdf .docx)"},
    "doc_title": {"de": "Titel", "en": "Title"},
    "doc_date": {"de": "Datum", "en": "Date"},
    "doc_type": {"de": "Typ", "en": "Type"},
    "doc_size": {"de": "Grösse", "en": "Size"},
    "doc_chunks": {"de": "Abschnitte", "en": "Chunks"},
    "chars": {"de": "{n} Zeichen", "en": "{n} characters"},
    "doc_file": {"de": "Datei", "en": "File"},
    "delete": {"de": "Entfernen", "en": "Remove"},
    "no_documents": {"de": "Noch keine Dokumente in dieser Sammlung.",
                     "en": "No documents in this collection yet."},
    "may_not_write": {"de": "Ihr Schlüssel darf keine Dokumente ändern.",
                      "en": "Your key may not change documents."},
    "ingested": {"de": "Neu: {added}. Ersetzt: {replaced}. Unverändert: {unchanged}.",
                 "en": "Added: {added}. Replaced: {replaced}. Unchanged: {unchanged}."},
    "refused_files": {"de": "Nichts gespeichert, abgelehnt: {failed}",
                      "en": "Nothing stored, refused: {failed}"},
    "removed_doc": {"de": "Entfernt: {name}", "en": "Removed: {name}"},
    "examples": {"de": "Beispiele", "en": "Examples"},
    "you": {"de": "Sie", "en": "You"},
}


def t(key: str, lang: str, **values: object) -> str:
    """The text for ``key`` in ``lang`` (English for an unknown language)."""
    words = _TEXT[key].get(lang) or _TEXT[key]["en"]
    return words.format(**values) if values else words


def pick_language(accept: str | None) -> str:
    """The first of LANGUAGES an Accept-Language header (or navigator.language) names."""
    for part in (accept or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "en"
