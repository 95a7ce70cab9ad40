"""Instruction-like passages: text in a document that addresses an AI system instead of a reader."""
from __future__ import annotations

import re

# Phrasings of prompt injection in German and English: commands to ignore or replace earlier
# instructions, to answer in a fixed way, or to change role. They describe the attack, not any
# one document; a passage that matches is flagged at ingest and shown as such (it is quoted as
# data like any other text and never obeyed: the extractive path follows no text, and the
# model's prompt says never to follow instructions inside the passages). Measured false flags:
# none among 247 texts (the seed article, the domain documents, every XQuAD de/en context).
_PATTERNS = [
    r"\b(ignore|disregard|forget)\s+(all\s+|any\s+)?(the\s+)?(previous|prior|above|earlier|"
    r"your)\s+(instructions?|prompts?|rules|directions)",
    r"\bignorier(e|en)?\s+(alle\s+)?(vorherigen|bisherigen|obigen|deine|ihre)\s+"
    r"(anweisungen|instruktionen|regeln|vorgaben)",
    r"\b(vergiss|vergessen sie)\s+(alle\s+)?(vorherigen|bisherigen)?\s*(anweisungen|regeln)",
    r"\b(always|from now on|you must)\s+(answer|respond|reply|say)\b",
    r"\b(antworte|antworten sie)\s+(immer|ab jetzt|stets|nur)\b",
    r"\byou are now\b|\bdu bist (jetzt|ab sofort)\b|\bact as (an? )?(ai|assistant|system)\b",
    r"\b(system prompt|systemprompt|developer mode|jailbreak)\b",
    r"\b(new|neue)\s+(instructions?|anweisungen)\s*:",
]
_INSTRUCTION = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE)


def instruction_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every instruction-like phrase in ``text``."""
    return [(m.start(), m.end()) for m in _INSTRUCTION.finditer(text)]
