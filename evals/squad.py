"""SQuAD answer scoring: exact match, token F1 and containment, with German articles added.

The normalisation is the official SQuAD v1.1 script's (lower-case, drop punctuation, drop the
English articles a/an/the, collapse white space). beleg extends the article list with the German
articles and their inflected forms (der, die, das, den, dem, des, ein, eine, einen, einem, einer,
eines), because XQuAD's German gold answers often start with one ("die Normannen") while an
extractive answer may not, or the other way round. Citation markers such as "[1]" are removed
before scoring.
"""
from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable

ARTICLES = ("a", "an", "the",
            "der", "die", "das", "den", "dem", "des",
            "ein", "eine", "einen", "einem", "einer", "eines")
_ARTICLES = re.compile(r"\b(" + "|".join(ARTICLES) + r")\b")
_MARKERS = re.compile(r"\s*\[\d+\]")
# The official script drops ASCII punctuation; German text also carries typographic quotes,
# dashes and guillemets, which are punctuation in the same sense.
_PUNCT = set(string.punctuation) | set("«»„“”‚‘’–—…·")


def strip_citation_markers(text: str) -> str:
    """'Rund 15'000 [1].' -> 'Rund 15'000.'"""
    return _MARKERS.sub("", text)


def normalize(text: str) -> str:
    """SQuAD normalisation, extended with German articles and typographic punctuation."""
    text = unicodedata.normalize("NFC", strip_citation_markers(text)).lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> bool:
    return normalize(prediction) == normalize(gold)


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = normalize(prediction).split(), normalize(gold).split()
    common = Counter(pred) & Counter(ref)
    overlap = sum(common.values())
    if not pred or not ref:
        return float(pred == ref)
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred), overlap / len(ref)
    return 2 * precision * recall / (precision + recall)


def contains(prediction: str, gold: str) -> bool:
    """The normalised gold answer occurs in the normalised prediction, on word boundaries."""
    pred, ref = normalize(prediction), normalize(gold)
    return bool(ref) and f" {ref} " in f" {pred} "


def best_of(prediction: str, golds: Iterable[str]) -> dict[str, float | bool]:
    """EM, F1 and containment against the best-matching of several gold answers (SQuAD rule)."""
    golds = [g for g in golds if g.strip()]
    if not golds:
        return {"em": False, "f1": 0.0, "contains_gold": False}
    return {"em": any(exact_match(prediction, g) for g in golds),
            "f1": max(token_f1(prediction, g) for g in golds),
            "contains_gold": any(contains(prediction, g) for g in golds)}
