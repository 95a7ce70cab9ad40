"""User-facing sentences in German and English."""
from __future__ import annotations

_TEXTS: dict[str, dict[str, str]] = {
    "refusal": {
        "de": "Dazu finde ich in den Dokumenten keine belegte Angabe.",
        "en": "The documents do not say; I found no passage that answers this.",
    },
    "empty_store": {
        "de": "Es sind noch keine Dokumente gespeichert. Fügen Sie zuerst Dokumente hinzu.",
        "en": "No documents are stored yet. Add documents first.",
    },
    "fallback": {
        "de": "Hinweis: Das Sprachmodell ist nicht erreichbar ({detail}); "
              "die Antwort zitiert die Quellen direkt.",
        "en": "Note: the language model is unavailable ({detail}); "
              "the answer quotes the sources directly.",
    },
    "removed": {
        "de": "Hinweis: {count} Aussage(n) mit nicht belegten Zahlen wurden entfernt.",
        "en": "Note: {count} statement(s) with figures the sources do not contain were removed.",
    },
}


def text(key: str, language: str, **kwargs: object) -> str:
    """The message ``key`` in ``language`` (English when the language is unknown)."""
    entry = _TEXTS[key]
    return entry.get(language, entry["en"]).format(**kwargs)
