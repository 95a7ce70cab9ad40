"""A Chroma server that dies under a running beleg: 503 with a message that says what to do,
never a 500, and answers again once it is back (real `chroma run`, real uvicorn)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import HashEmbedder
from servers import serve

from app.answer.selection import Selector
from app.api import create_app
from app.engine import AnswerEngine
from app.library import Library
from evals.reliability.chroma_fault import CHROMA, ChromaProcess
from ingest.documents import Document
from store.collection import ChunkStore, StoreUnavailable, connect
from store.retrieval import HybridRetriever

NOTE = ("Die Fähre zwischen Rason und Wladiwostok fährt seit 2023 zweimal pro Woche. "
        "Eine Fahrt dauert rund 14 Stunden.")
QUESTION = {"question": "Wie lange dauert eine Fahrt mit der Fähre?", "mode": "extractive"}


@pytest.fixture(scope="module")
def chroma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaProcess]:
    if not CHROMA.exists():
        pytest.skip("the chroma CLI is not installed in this environment")
    root = tmp_path_factory.mktemp("chroma-down")
    proc = ChromaProcess(root / "db", root / "chroma.log").start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def live(chroma: ChromaProcess) -> Iterator[Any]:
    embedder = HashEmbedder()
    store = ChunkStore(connect(url=chroma.url), "downtest", embedder.name, embedder.dim)
    Library(store, embedder).add_document(Document("faehre.txt", NOTE, {}))
    engine = AnswerEngine(HybridRetriever(store, embedder), Selector(None))
    with serve(create_app(engine, with_ui=False)) as server:
        yield server


def test_a_dead_chroma_server_is_a_503_that_says_what_to_do(live: Any,
                                                            chroma: ChromaProcess) -> None:
    with live.client(timeout=60) as http:
        assert http.post("/api/ask", json=QUESTION).status_code == 200
        chroma.kill()
        try:
            for method, path, body in (("POST", "/api/ask", QUESTION),
                                       ("POST", "/api/search", {"query": "Fähre", "k": 3}),
                                       ("GET", "/api/documents", None),
                                       ("GET", "/api/documents/faehre.txt", None),
                                       ("DELETE", "/api/documents/faehre.txt", None)):
                r = http.request(method, path, json=body)
                assert r.status_code == 503, (path, r.status_code, r.text)
                detail = r.json()["detail"]
                assert "Chroma server" in detail and "127.0.0.1" not in detail, detail
                assert r.headers["retry-after"]
            assert http.get("/api/health").status_code == 503
            ready = http.get("/api/ready")  # readiness follows the store ...
            assert ready.status_code == 503 and ready.headers["retry-after"]
            assert "127.0.0.1" not in ready.text
            assert http.get("/api/live").status_code == 200  # ... liveness does not
        finally:
            chroma.start()
        r = http.post("/api/ask", json=QUESTION)
        assert r.status_code == 200 and r.json()["citations"], r.text
        assert http.get("/api/ready").json()["status"] == "ready"
        # Nothing was lost: the document is still there.
        assert [d["source"] for d in http.get("/api/documents").json()["documents"]] == \
            ["faehre.txt"]


def test_store_calls_raise_the_typed_error(tmp_path: Path, chroma: ChromaProcess) -> None:
    embedder = HashEmbedder()
    store = ChunkStore(connect(url=chroma.url), "typed", embedder.name, embedder.dim)
    chroma.kill()
    try:
        with pytest.raises(StoreUnavailable, match="Chroma server"):
            store.documents()
        with pytest.raises(StoreUnavailable):
            store.count()
    finally:
        chroma.start()
    assert store.count() == 0
    with httpx.Client(trust_env=False) as probe:  # the restarted server answers
        assert probe.get(chroma.url + "/api/v2/heartbeat").status_code == 200
