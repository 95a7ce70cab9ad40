"""User-facing sentences in German and English."""
from __future__ import annotations

import re

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
    "empty_reply": {
        "de": "Hinweis: Das Sprachmodell hat keine verwertbare Antwort geliefert; die Antwort "
              "zitiert die Quellen direkt.",
        "en": "Note: the language model returned no usable answer; the answer quotes the "
              "sources directly.",
    },
    "no_content": {
        "de": "Die Frage enthält keine Wörter, nach denen ich suchen könnte. Fragen Sie nach "
              "etwas, das in Ihren Dokumenten steht.",
        "en": "The question has no words I could look up. Ask about something in your "
              "documents.",
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


# Addresses, hosts and ports of internal services are for the logs, not for users.
_ADDRESS = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+|\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"
                      r"|\b(?:localhost|[\w-]+(?:\.[\w-]+)+):\d{2,5}\b", re.I)


def public_detail(detail: str, limit: int = 160) -> str:
    """An error's text as a user may see it: internal addresses replaced, length capped."""
    return _ADDRESS.sub("<backend>", detail)[:limit]
