"""Rendering: the answer text of each kind, in the question's language, with [n] markers."""
from __future__ import annotations

from app.answer.short_answer import ShortAnswer
from app.citations import Sentence


def quote(sentence: Sentence, language: str) -> str:
    return (f"„{sentence.text}“ [{sentence.n}]" if language == "de"
            else f"\"{sentence.text}\" [{sentence.n}]")


def render_answered(short: ShortAnswer, support: Sentence, language: str) -> str:
    """The short answer first, then the sentence it was copied from."""
    if short.method == "sentence":
        lead = "Laut den Quellen:" if language == "de" else "The sources say:"
        return f"{lead} {quote(support, language)}"
    return f"{short.text} [{short.n}] — {quote(support, language)}"


def render_candidates(sentences: list[Sentence], language: str) -> str:
    """Several passages, said plainly to be the closest ones rather than one clear answer."""
    body = " ".join(quote(s, language) for s in sentences)
    if language == "de":
        return f"Die Quellen geben keine eindeutige Antwort. Am nächsten kommen: {body}"
    return f"The sources give no single clear answer. The closest passages: {body}"


def render_conflict(sentences: list[Sentence], language: str) -> str:
    """Two or more sources that state different figures for the same question."""
    body = " ".join(quote(s, language) for s in sentences)
    if language == "de":
        return f"Die Quellen widersprechen sich: {body}"
    return f"The sources disagree: {body}"
