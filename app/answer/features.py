"""Generic features of each candidate sentence, the input of the calibrated selection step."""
from __future__ import annotations

import math

import numpy as np

from app.answer.analysis import FIGURE_TYPES
from app.answer.evidence import Evidence

# The order is the contract with the calibration files (app/answer/calibrations/*.json).
FEATURES = (
    "cos",            # cosine of question and sentence
    "cos_gap",        # cos minus the best cos among this question's candidates (<= 0)
    "cos_z",          # cos standardised within the question (model-agnostic spread)
    "cos_rank",       # 1 / (1 + rank of cos among the candidates)
    "source_rank",    # 1 / retrieval rank of the sentence's chunk
    "top_dense",      # the best chunk's dense score (is anything on topic at all?)
    "overlap",        # share of the question's stems found in the sentence
    "overlap_chunk",  # share of the question's stems found in the sentence's chunk
    "best_overlap",   # the best overlap among the candidates (question-level)
    "support",        # mean term support (stems, compounds, word embeddings across languages)
    "support_gap",    # support minus the best support among the candidates
    "weakest_term",   # the question term worst matched by every candidate (an absent concept)
    "focus",          # match of the counted thing ("wie viele Panzer") in the sentence
    "best_focus",     # its best match among the candidates
    "prev_overlap",   # overlap of the sentence before it in the same chunk (it may set the scene)
    "novel",          # share of the sentence's stems that are not in the question
    "typed",          # the question wants a figure, a date or a duration
    "type_match",     # ... and the sentence has a span of that type
    "type_missing",   # ... and the sentence has none
    "type_any",       # some candidate of this question has a span of that type
    "first",          # first sentence of its chunk
    "statement",      # ends like a statement (not a heading or a list item)
    "log_len",        # log of the sentence length in characters
    "bias",
)


def feature_matrix(ev: Evidence) -> np.ndarray:
    """One row of FEATURES per candidate (shape: len(ev) x len(FEATURES))."""
    n = len(ev)
    out = np.zeros((n, len(FEATURES)), dtype=np.float64)
    if not n:
        return out
    cos = np.array([c.cos for c in ev.candidates])
    spread = float(cos.std()) or 1.0
    order = np.argsort(-cos, kind="stable")
    rank = np.empty(n)
    rank[order] = np.arange(n)
    qs = ev.question_stems
    overlaps = np.array([len(qs & c.stems) / len(qs) if qs else 0.0 for c in ev.candidates])
    support = np.array([c.support for c in ev.candidates])
    per_term = [c.term_scores for c in ev.candidates if c.term_scores]
    weakest = float(np.min(np.max(np.array(per_term), axis=0))) if per_term else 1.0
    best_focus = max(c.focus for c in ev.candidates)
    typed = ev.answer_type in FIGURE_TYPES
    any_type = any(c.spans for c in ev.candidates)
    for i, c in enumerate(ev.candidates):
        s = c.sentence
        chunk = ev.chunk_stems.get(s.n, frozenset())
        text = s.text.rstrip()
        out[i] = (
            c.cos, c.cos - cos.max(), (c.cos - cos.mean()) / spread, 1.0 / (1.0 + rank[i]),
            1.0 / s.n, ev.top_dense, overlaps[i],
            len(qs & chunk) / len(qs) if qs else 0.0, overlaps.max(),
            c.support, c.support - support.max(), weakest, c.focus, best_focus,
            overlaps[i - 1] if c.index > 0 else 0.0,
            len(c.stems - qs) / len(c.stems) if c.stems else 0.0,
            float(typed), float(typed and bool(c.spans)), float(typed and not c.spans),
            float(typed and any_type), float(c.index == 0),
            float(text[-1:] in ".!?…\"“”»«)" if text else 0.0), math.log(1 + len(s.text)), 1.0)
    return out
