"""A client that goes away mid-answer stops the generation behind it (real uvicorn, a model
that would otherwise write for a minute)."""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import EndlessLLM
from servers import LiveServer, serve

from app.api import create_app
from app.engine import AnswerEngine

QUESTION = "Wie viele nordkoreanische Soldaten kämpfen im Ukraine-Krieg?"


@pytest.fixture
def endless() -> EndlessLLM:
    return EndlessLLM(limit_s=60.0)


@pytest.fixture
def live(seed_engine: Any, answering_selector: Any, endless: EndlessLLM) -> Iterator[LiveServer]:
    engine = AnswerEngine(seed_engine.retriever, answering_selector, llm=endless, answer_slots=1)
    with serve(create_app(engine, with_ui=False)) as server:
        yield server


def test_a_closed_stream_stops_the_model_and_frees_the_slot(live: LiveServer,
                                                            endless: EndlessLLM) -> None:
    with live.client(timeout=30) as http:
        with http.stream("POST", "/api/ask?stream=true", json={"question": QUESTION}) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if line.startswith("event: token"):
                    break
            assert endless.started.wait(10), "the question never reached the model"
        # The response is closed: the model must be told to stop well before its minute.
        assert endless.stopped.wait(10), f"still generating after {endless.words} words"
        # ...and the only answer slot is free again for the next question.
        t0 = time.monotonic()
        answer = http.post("/api/ask", json={"question": QUESTION, "mode": "extractive"})
        assert answer.status_code == 200 and time.monotonic() - t0 < 20
