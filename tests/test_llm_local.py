"""The in-process llama.cpp backend with the real tiny SmolLM2-135M GGUF."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.llm import LLM, BackendUnavailable, LocalLLM, ModelFileError, build_llm
from app.model_files import smollm2_path

pytestmark = pytest.mark.slow

MESSAGES = [{"role": "user", "content": "Write three sentences about the sea."}]
STORY = [{"role": "user", "content": "Write a long story about the sea."}]
# One thread: these tests share 2 cores with whatever else runs, and llama.cpp with 2 threads
# slows down about tenfold (3 instead of 30 tokens/s) as soon as another process takes a core.
THREADS = 1


@pytest.fixture(scope="module")
def llm() -> Iterator[LocalLLM]:
    model = build_llm(
        "local", model_path=smollm2_path(), threads=THREADS, n_ctx=2048, timeout=120.0
    )
    assert isinstance(model, LocalLLM)
    yield model
    model.close()


def test_lazy_load_then_plain_chat(llm: LocalLLM) -> None:
    assert isinstance(llm, LLM)
    health = llm.health()
    assert health["ok"] is True and health["backend"] == "local"
    assert health["model"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    result = llm.chat(MESSAGES, max_tokens=24)
    assert result.text.strip()
    assert result.backend == "local"
    assert result.prompt_tokens is not None and result.prompt_tokens > 5
    assert result.completion_tokens is not None and 0 < result.completion_tokens <= 24
    assert result.first_token_ms is not None and 0 < result.first_token_ms <= result.total_ms
    assert "loaded in" in str(llm.health()["detail"])


def test_streaming_delivers_the_text_in_order(llm: LocalLLM) -> None:
    deltas: list[str] = []
    streamed = llm.chat(MESSAGES, max_tokens=24, on_token=deltas.append)
    assert len(deltas) > 3
    assert "".join(deltas) == streamed.text
    # temperature 0 is greedy: the same prompt gives the same answer with or without a callback
    assert llm.chat(MESSAGES, max_tokens=24).text == streamed.text


def test_early_stop(llm: LocalLLM) -> None:
    started = time.monotonic()
    full = llm.chat(STORY, max_tokens=200)
    full_s = time.monotonic() - started
    assert full.completion_tokens == 200  # the story runs to the limit

    deltas: list[str] = []
    started = time.monotonic()
    stopped = llm.chat(
        STORY, max_tokens=200, on_token=lambda d: deltas.append(d) or len(deltas) == 3
    )
    assert len(deltas) == 3
    assert stopped.text == "".join(deltas) and full.text.startswith(stopped.text)
    # The engine has one slot: had the stopped generation gone on to 200 tokens, this request
    # would wait for it. Comparing with the full run keeps the check fair on a busy machine.
    assert llm.chat(MESSAGES, max_tokens=4).text
    assert time.monotonic() - started < 0.5 * full_s


def test_three_concurrent_chats_complete(llm: LocalLLM) -> None:
    prompts = [f"Name one animal that starts with the letter {c}." for c in "BCD"]
    expected = {p: llm.chat([{"role": "user", "content": p}], max_tokens=16).text for p in prompts}
    results: dict[str, str] = {}
    errors: list[BaseException] = []

    def ask(prompt: str) -> None:
        try:
            results[prompt] = llm.chat([{"role": "user", "content": prompt}], max_tokens=16).text
        except Exception as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(p,)) for p in prompts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert results == expected  # nobody got another caller's tokens


def test_parallel_slots_serve_concurrent_chats() -> None:
    model = LocalLLM(smollm2_path(), threads=THREADS, n_ctx=2048, parallel=3, timeout=120.0)
    try:
        texts: list[str] = []
        threads = [
            threading.Thread(target=lambda: texts.append(model.chat(MESSAGES, max_tokens=12).text))
            for _ in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert len(texts) == 3 and all(t.strip() for t in texts)
    finally:
        model.close()


def test_timeout_raises_backend_unavailable(llm: LocalLLM) -> None:
    with pytest.raises(BackendUnavailable, match="within 0.01 s"):
        llm.chat(MESSAGES, max_tokens=300, timeout=0.01)
    assert llm.chat(MESSAGES, max_tokens=4).text  # still usable afterwards


def test_prompt_longer_than_context_is_reported(llm: LocalLLM) -> None:
    long = [{"role": "user", "content": "word " * 5000}]
    with pytest.raises(BackendUnavailable, match="context size"):
        llm.chat(long, max_tokens=4)


def test_no_tcp_port_is_opened(llm: LocalLLM) -> None:
    llm.warm_up()
    address = llm._server.listening_address
    assert address.startswith("unix://")
    socket_dir = Path(address.removeprefix("unix://")).parent
    assert socket_dir.stat().st_mode & 0o077 == 0  # only this user can reach the socket


def test_wrong_paths_give_model_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="not found"):
        build_llm("local", model_path=tmp_path / "missing.gguf")
    not_gguf = tmp_path / "weights.bin"
    not_gguf.write_bytes(b"PK\x03\x04 definitely not a model")
    with pytest.raises(ModelFileError, match="not a GGUF"):
        build_llm("local", model_path=not_gguf)


def test_truncated_gguf_fails_on_load_with_a_clear_message(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.gguf"
    with open(smollm2_path(), "rb") as src:
        truncated.write_bytes(src.read(2_000_000))
    model = LocalLLM(truncated, threads=THREADS)
    with pytest.raises(BackendUnavailable, match="could not load .*truncated or corrupt"):
        model.chat(MESSAGES, max_tokens=4)
    health = model.health()
    assert health["ok"] is False and "load failed" in str(health["detail"])
    assert not [p for p in os.listdir(tmp_path) if p != "truncated.gguf"]


def test_grammar_constrained_copy_is_part_of_the_sentence(llm: LocalLLM) -> None:
    from app.answer.span_copy import choice_grammar, copy_span

    sentence = "Die Dichtung der Pumpe ist nach 2000 Betriebsstunden zu ersetzen."
    span = copy_span(llm, sentence, "Wann ist die Dichtung zu ersetzen?")
    assert span is not None  # the grammar leaves the tiny model no other choice than a copy
    start, end = span
    assert 0 <= start < end <= len(sentence) and sentence[start:end].strip() == sentence[start:end]
    options = ["2000 Betriebsstunden", "10 Minuten"]
    r = llm.chat([{"role": "user", "content": "Pick one."}], max_tokens=16,
                 grammar=choice_grammar(options))
    assert r.text in options
