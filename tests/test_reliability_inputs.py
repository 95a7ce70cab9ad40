"""The bad-input battery (evals/reliability/inputs.py) against real servers, open and with a token."""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest
from servers import TOKEN, LiveServer, serve

from app.answer.selection import Selector
from app.api import create_app
from app.engine import AnswerEngine
from app.library import Library
from evals.reliability.inputs import CASES, CATEGORIES, REFUSED, InputResult, run_inputs
from ingest.documents import Document
from store.retrieval import HybridRetriever

NOTE = ("Die Fähre zwischen Rason und Wladiwostok fährt seit 2023 zweimal pro Woche. "
        "Eine Fahrt dauert rund 14 Stunden.")

@pytest.fixture
def library(fake_library: Library) -> Library:
    fake_library.add_document(Document("faehre.txt", NOTE, {}))
    return fake_library


def _engine(library: Library) -> AnswerEngine:
    return AnswerEngine(HybridRetriever(library.store, library.embedder), Selector(None))


@pytest.fixture
def open_server(library: Library) -> Iterator[LiveServer]:
    with serve(create_app(_engine(library), with_ui=False)) as live:
        yield live


@pytest.fixture
def token_server(library: Library) -> Iterator[LiveServer]:
    """With the web chat mounted: its routes (upload, session reset) are among the cases."""
    with serve(create_app(_engine(library), api_token=TOKEN), token=TOKEN) as live:
        yield live


def _check(results: list[InputResult]) -> None:
    wrong = [r for r in results if not (r.handled and r.store_unchanged)]
    assert not wrong, "\n".join(f"{r.case.name}: {r.note}" for r in wrong)
    moved = [r.case.name for r in results if not r.store_unchanged]
    assert not moved, f"the store changed under {moved}"


def test_the_catalogue_is_broad_and_every_case_is_an_error() -> None:
    assert len(CASES) >= 60
    names = Counter(c.name for c in CASES)
    assert not [n for n, k in names.items() if k > 1], "case names must be unique"
    assert {c.category for c in CASES} == set(CATEGORIES)
    for case in CASES:
        allowed = {200} if case.detail == REFUSED else set(range(400, 500))
        assert case.expect and case.expect <= allowed, case.name
        assert case.method in ("GET", "POST", "DELETE"), case.name
        assert case.path.startswith("/"), case.name


def test_every_bad_input_gets_a_clear_error_on_an_open_server(open_server: LiveServer) -> None:
    t0 = time.perf_counter()
    results = run_inputs(open_server.url)
    assert time.perf_counter() - t0 < 60
    assert len(results) == sum(c.category != "auth" for c in CASES)
    _check(results)


def test_every_bad_input_gets_a_clear_error_on_a_token_server(token_server: LiveServer) -> None:
    t0 = time.perf_counter()
    results = run_inputs(token_server.url, TOKEN)
    assert time.perf_counter() - t0 < 60
    assert len(results) == len(CASES)
    _check(results)
