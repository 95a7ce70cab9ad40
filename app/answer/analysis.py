"""Question analysis: language, expected answer type, focus term, and follow-up condensing."""
from __future__ import annotations

import re
from dataclasses import dataclass

from store.lexical import STOPWORDS, normalize

_DE_HINTS = frozenset(
    "der die das und ist sind wie viele viel wer wann warum wo was welche welcher hat haben "
    "wurde wurden nicht ein eine einen dem den des mit von zu im auf für sich auch noch kam "
    "gibt geben seit nach über bis zum zur".split())
_EN_HINTS = frozenset(
    "the and is are how many much who when why where what which has have was were not a an of "
    "to in on for did does do with from by since after about give gave there".split()) - {"was"}
_DE_QUESTION_START = re.compile(r"^\s*(was|wer|wie|wo|wann|warum|welche[rsnm]?|wieso|weshalb|"
                                r"wieviele?)\b", re.I)

# What a question counts or asks the value of (its "focus"), from German and English grammar:
# - "how many X ...": X runs to the first function word, punctuation or past-tense verb
#   (English "-ed"), at most three words ("how many North Korean soldiers fought ...");
# - "wie viele X": German writes X as optional inflected adjectives, then a capitalised noun;
# - "what is the X of ...": X is one or two words; "wie hoch ist der X": one word.
_HOW_MANY = re.compile(r"\bhow many ((?:[\w'’-]+\s?){1,3})", re.I)
_FOCUS_PATTERNS = [
    re.compile(r"\b(?i:wie viele) ((?:[a-zäöü][\wäöüß-]*(?:e|en|er|es|em) ){0,2}[A-ZÄÖÜ][\wäöüß-]*)"),
    re.compile(r"\bwhat (?:is|was|are|were) the ((?:[\w-]+ )?[\w-]+) of\b", re.I),
    re.compile(r"\bwie (?:hoch|gross|groß) (?:ist|war|sind|waren) (?:der|die|das) ([\wäöüß-]+)",
               re.I),
]
_FOLLOW_UP = re.compile(
    r"^\s*(und|and|aber|but|also|so|what about|how about|und was|und wie|und wer|und wann)\b|"
    r"\b(davon|dafür|dagegen|daraus|dort|damals|diese[rsnm]?|jene[rsnm]?|sie|er|es|ihm|ihr|ihnen|"
    r"they|them|it|its|their|those|these|that|this|he|she|him|her)\b", re.I)


@dataclass(frozen=True)
class QuestionInfo:
    """What the answer engine needs to know about a question."""

    text: str
    language: str
    focus: str | None
    terms: tuple[str, ...]


def detect_language(text: str) -> str:
    """'de' or 'en' by function words and German letters (default: 'en')."""
    toks = re.findall(r"[a-zäöüß]+", text.lower())
    de = sum(t in _DE_HINTS for t in toks) + 2 * len(re.findall(r"[äöüß]", text.lower())) \
        + (1.5 if _DE_QUESTION_START.match(text) else 0)
    en = sum(t in _EN_HINTS for t in toks)
    return "de" if de > en else "en"


def content_terms(text: str) -> list[str]:
    """Content words (unstemmed, lower-case) in order, without stopwords and bare numbers."""
    out: list[str] = []
    for w in re.findall(r"[^\W_]+(?:['’-][^\W_]+)*", normalize(text)):
        w = re.sub(r"['’]s$", "", w)
        if w in STOPWORDS or w.isdigit() or len(w) < 2 or w in out:
            continue
        out.append(w)
    return out


_SUBJECT_PATTERNS = [
    re.compile(r"\b(?:how old|wie alt) (?:is|was|ist|war|sind|waren) ([\w' -]+)", re.I),
]


def _counted_words(phrase: str) -> list[str]:
    """The words of a "how many" phrase up to the first function word, or an "-ed" verb after
    the noun ("how many forced fumbles" keeps its participle)."""
    out = []
    for w in re.findall(r"[^\W_]+(?:['’-][^\W_]+)*", normalize(phrase)):
        if w in STOPWORDS or (out and w.endswith("ed") and len(w) > 4):
            break
        if w in _GENERIC:  # "how many people live ...": the noun ends the phrase, no focus
            return []
        out.append(w)
    return out


def focus_phrase(text: str) -> list[str]:
    """What a question counts or asks the value of: modifiers first, the head word last."""
    for pattern in _SUBJECT_PATTERNS:  # "how old is Kim Jong Un": the person is the focus
        m = pattern.search(text)
        if m:
            words = content_terms(m.group(1))
            if words:
                return [words[0]]
    m = _HOW_MANY.search(text)
    candidates = [_counted_words(m.group(1))] if m else []
    candidates += [content_terms(m.group(1)) for p in _FOCUS_PATTERNS if (m := p.search(text))]
    for words in candidates:
        words = [w for w in words if w not in _GENERIC]
        if words:
            return words
    return []


def focus_term(text: str) -> str | None:
    """The head word of what a question counts or asks the value of, if it says so."""
    words = focus_phrase(text)
    return words[-1] if words else None


# Words that say how something is counted, not what: "how many people", "wie viele Male".
_GENERIC = frozenset("people menschen leute mal times total gesamt insgesamt".split())


def analyse(text: str) -> QuestionInfo:
    phrase = focus_phrase(text)
    return QuestionInfo(text=text, language=detect_language(text),
                        focus=phrase[-1] if phrase else None, terms=tuple(content_terms(text)))


def is_follow_up(text: str) -> bool:
    """Does the question lean on the conversation ("Und wie viel kam zurück?")?"""
    return bool(_FOLLOW_UP.search(text)) or len(content_terms(text)) <= 2


@dataclass(frozen=True)
class Condensed:
    """A follow-up made retrievable: its own words, lexical query text, the earlier question."""

    own: str
    text: str
    previous: str | None


_CONNECTIVE = re.compile(r"^\s*(und|and|aber|but|also|so|okay|ok|what about|how about)\b[\s,]*",
                         re.I)


def strip_connective(question: str) -> str:
    """'Und wie viel kam zurück?' -> 'wie viel kam zurück?' (the connective only adds noise)."""
    rest = _CONNECTIVE.sub("", question)
    return rest[:1].upper() + rest[1:] if rest.strip() else question


def condense(question: str, history: list[dict[str, str]] | None) -> Condensed:
    """Deterministic condensing: a follow-up borrows the previous user turn.

    The dense query becomes a blend of both questions (the new one weighs double); the lexical
    query keeps the new question alone unless it has almost no content words of its own.
    """
    own = strip_connective(question)
    if not history or not is_follow_up(question):
        return Condensed(own, own, None)
    previous = [t["content"] for t in history if t.get("role") == "user" and t.get("content")]
    if not previous:
        return Condensed(own, own, None)
    text = own if len(content_terms(own)) >= 2 else f"{own} {previous[-1]}"
    return Condensed(own, text, previous[-1])


# What kind of span answers a question, from its interrogative alone (German and English
# grammar, not any one document). Order matters: the first pattern that matches wins.
_TYPE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("age", re.compile(r"\b(how old|wie alt|what age|welches alter|in welchem alter)\b", re.I)),
    ("percent", re.compile(r"\b(percent|percentage|per cent|prozent\w*|welchen anteil)\b", re.I)),
    ("duration", re.compile(r"\b(how long|wie lange?|für wie lange|for how long|how many (days|"
                            r"weeks|months|years|hours|minutes)|wie viele (tage|wochen|monate|"
                            r"jahre|stunden|minuten))\b", re.I)),
    ("time", re.compile(r"\b(when|what time|at what time|um wie ?viel uhr|um welche uhrzeit|"
                        r"welche uhrzeit|what year|which year|in what year|what date|which day|"
                        r"by what date|until when|since when|wann|seit wann|bis wann|ab wann|"
                        r"in welchem jahr|welches jahr|welchem datum|welches datum|"
                        r"an welchem tag)\b", re.I)),
    ("quantity", re.compile(r"\b(how (many|much)|wie (viele?n?|hoch|groß|gross|schwer|weit)|"
                            r"wieviele?|what (number|amount|sum|value|price)|number of|"
                            r"welche[nrs]? (betrag|anzahl|summe|wert|preis|menge|höhe)|"
                            r"anzahl)\b", re.I)),
    ("person", re.compile(r"\b(who|whom|whose|wer|wem|wen|wessen)\b", re.I)),
    ("place", re.compile(r"\b(where|wo|wohin|woher|in which (country|city|region|state)|"
                         r"in welche[mnr]? (land|stadt|region|staat))\b", re.I)),
)
ANSWER_TYPES = tuple(t for t, _ in _TYPE_PATTERNS) + ("other",)
# Types whose answer is a figure, a date or a duration: a span the figure parser can find.
FIGURE_TYPES = frozenset({"age", "percent", "duration", "time", "quantity"})


def answer_type(text: str) -> str:
    """The kind of span that answers ``text``: one of ANSWER_TYPES ('other' when unsure)."""
    for name, pattern in _TYPE_PATTERNS:
        if pattern.search(text):
            return name
    return "other"
