"""The model's short answer: a grammar-constrained copy of part of one evidence sentence."""
from __future__ import annotations

import json
import logging
import re
from typing import Any

logger = logging.getLogger(__name__)

_TOKEN = re.compile(r"\S+")
# Punctuation a copied span never ends or starts with (SQuAD-style spans do not carry it).
_EDGE = " \t\n.,;:!?\"'„“”«»‚‘’()[]"
# Sentences longer than this many words are cut to a window around the question's words.
MAX_WORDS = 60
COPY_MAX_TOKENS = 40

_SYSTEM = ("You copy the answer to a question out of one sentence. Reply with the shortest "
           "part of the sentence that answers the question, copied word for word: a name, a "
           "date, a number with its unit, or a short phrase. Never add words.")


def _literal(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def copy_grammar(sentence: str) -> str:
    """GBNF that allows exactly the contiguous runs of the sentence's words (with their spaces)."""
    tokens = [m.group(0) for m in _TOKEN.finditer(sentence)][:MAX_WORDS]
    if not tokens:
        return 'root ::= ""'
    lines = [f"root ::= {' | '.join(f'w{i}' for i in range(len(tokens)))}"]
    for i, tok in enumerate(tokens):
        rest = f' (" " w{i + 1})?' if i + 1 < len(tokens) else ""
        lines.append(f"w{i} ::= {_literal(tok)}{rest}")
    return "\n".join(lines)


def choice_grammar(options: list[str]) -> str:
    """GBNF that allows exactly one of ``options``."""
    return "root ::= " + " | ".join(_literal(o) for o in dict.fromkeys(options))


def copy_messages(sentence: str, question: str, options: list[str] | None = None) -> \
        list[dict[str, str]]:
    """The sentence first, the question last: a follow-up over the same sentence reuses the
    cached prompt prefix."""
    user = f"Sentence: {sentence}\n"
    if options:
        user += "Possible answers: " + " | ".join(options) + "\n"
    return [{"role": "system", "content": _SYSTEM},
            {"role": "user", "content": f"{user}Question: {question}\nAnswer:"}]


def locate(copied: str, sentence: str) -> tuple[int, int] | None:
    """Offsets of the copied text in the sentence, edges trimmed; None when it is not a copy."""
    text = copied.strip().strip(_EDGE)
    if not text:
        return None
    at = sentence.find(text)
    if at < 0:
        return None
    return at, at + len(text)


def copy_span(llm: Any, sentence: str, question: str, options: list[str] | None = None,
              timeout: float | None = None) -> tuple[int, int] | None:
    """Ask the model for the answering part of ``sentence``; None when it copied nothing exact.

    Raises the backend's BackendUnavailable when the model cannot be reached.
    """
    grammar = choice_grammar(options) if options else copy_grammar(sentence)
    result = llm.chat(copy_messages(sentence, question, options), max_tokens=COPY_MAX_TOKENS,
                      temperature=0.0, grammar=grammar, timeout=timeout)
    span = locate(result.text, sentence)
    if span is None:
        logger.info("the model's copy %r is not part of the sentence", result.text[:80])
    return span
