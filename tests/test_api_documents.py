"""Adding and removing documents over HTTP on a real server; bad files never lose stored ones."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from servers import serve

from app.answer.selection import Selector
from app.api import create_app
from app.engine import AnswerEngine
from app.library import Library
from store.retrieval import HybridRetriever

NOTE = ("Die Fähre zwischen Rason und Wladiwostok fährt seit 2023 zweimal pro Woche. "
        "Eine Fahrt dauert rund 14 Stunden.")


@pytest.fixture
def server(fake_library: Library) -> Iterator[Any]:
    emb = fake_library.embedder
    engine = AnswerEngine(HybridRetriever(fake_library.store, emb), Selector(None))
    with serve(create_app(engine, with_ui=False, max_upload_bytes=10_000)) as live:
        yield live


def test_upload_search_and_remove(server: Any) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        r = http.post("/api/documents", files=[("files", ("faehre.txt", NOTE.encode(), "text/plain"))])
        assert r.status_code == 200 and r.json()["added"] == ["faehre.txt"], r.text
        again = http.post("/api/documents", files=[("files", ("faehre.txt", NOTE.encode()))])
        assert again.json()["unchanged"] == ["faehre.txt"]
        hits = http.post("/api/search", json={"query": "Fähre Rason Wladiwostok", "k": 1}).json()
        assert hits["hits"][0]["source"] == "faehre.txt"
        listed = [d["source"] for d in http.get("/api/documents").json()["documents"]]
        assert listed == ["faehre.txt"]
        assert http.delete("/api/documents/faehre.txt").json() == {"removed": "faehre.txt"}
        assert http.delete("/api/documents/faehre.txt").status_code == 404
        assert http.get("/api/documents").json()["documents"] == []


def test_bad_files_are_reported_and_nothing_is_lost(server: Any) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.post("/api/documents", files=[("files", ("a.txt", NOTE.encode()))]
                         ).status_code == 200
        r = http.post("/api/documents", files=[
            ("files", ("tabelle.xlsx", b"PK\x03\x04 not really")),
            ("files", ("kaputt.pdf", b"%PDF-1.4 garbage")),
            ("files", ("gross.txt", b"x" * 20_000))])
        assert r.status_code == 422
        failed = {f["path"]: f["reason"] for f in r.json()["failed"]}
        assert set(failed) == {"tabelle.xlsx", "kaputt.pdf", "gross.txt"}
        assert "unsupported file type" in failed["tabelle.xlsx"]
        assert "larger than" in failed["gross.txt"]
        assert [d["source"] for d in http.get("/api/documents").json()["documents"]] == ["a.txt"]
