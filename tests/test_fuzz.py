"""Property tests (hypothesis): chunk offsets are exact for any text, the figure parser never
crashes and gives stable values, and the request models accept or refuse, never crash."""
from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.api import AskRequest
from app.figures import extract_figures
from app.openai_compat import ChatRequest
from ingest.chunking import ChunkingConfig, chunk_spans

# Text with the characters that matter to the splitters: sentence ends, newlines, digits,
# separators of numbers, quotes and some German letters, plus anything else at random.
TEXT = st.text(alphabet=st.sampled_from(list("ab Zä.!?\n\n0123456789,'’%$€-«»()")) | st.characters(),
               max_size=3000)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(TEXT, st.integers(min_value=ChunkingConfig.min_chars, max_value=1500))
def test_chunk_spans_are_exact_ordered_and_bounded(text: str, max_chars: int) -> None:
    spans = chunk_spans(text, ChunkingConfig(max_chars=max_chars))
    last = 0
    for start, end in spans:
        assert 0 <= start < end <= len(text)
        assert start >= last  # in order, not overlapping
        assert end - start <= max_chars
        assert text[start:end].strip()  # no empty chunk
        last = end
    covered = "".join(text[s:e] for s, e in spans)
    assert "".join(covered.split()) == "".join(text.split())  # no text is lost


@FUZZ
@given(TEXT)
def test_figure_parser_never_crashes_and_is_stable(text: str) -> None:
    first = extract_figures(text)
    again = extract_figures(text)
    assert [(f.value, f.unit, f.kind) for f in first] == [(f.value, f.unit, f.kind) for f in again]
    for f in first:
        assert 0 <= f.start < f.end <= len(text)
        assert not math.isnan(f.value)


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                       lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@FUZZ
@given(st.dictionaries(st.sampled_from(["question", "history", "mode", "x"]), JSONISH))
def test_ask_request_model_accepts_or_refuses(body: dict) -> None:  # type: ignore[type-arg]
    try:
        AskRequest.model_validate(body)
    except ValidationError:
        pass


@FUZZ
@given(st.dictionaries(st.sampled_from(["model", "messages", "stream"]), JSONISH))
def test_chat_request_model_accepts_or_refuses(body: dict) -> None:  # type: ignore[type-arg]
    try:
        ChatRequest.model_validate(body)
    except ValidationError:
        pass


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb"])
def test_lone_surrogates_are_refused_by_the_models(text: str) -> None:
    with pytest.raises(ValidationError, match="invalid Unicode"):
        AskRequest.model_validate({"question": text})
