"""Two `beleg serve` processes on one `chroma run` server, and a CLI ingest beside them: every
replica sees every write at once, without a restart (real processes, real HTTP)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from evals.reliability.chroma_fault import CHROMA, ChromaProcess

pytestmark = pytest.mark.slow

WERK = ("Das Werk in Emmen beschäftigt 340 Mitarbeitende. Es wurde 1987 gegründet und stellt "
        "Turbinenschaufeln her. Die Frühschicht beginnt um 6 Uhr.")
WERK_Q = "Wie viele Mitarbeitende beschäftigt das Werk in Emmen?"
HR = "Mitarbeitende haben Anspruch auf 28 Urlaubstage pro Kalenderjahr."


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(chroma_url: str, data: Path, port: int | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BELEG_")}
    env.update(BELEG_CHROMA_URL=chroma_url, BELEG_DATA_DIR=str(data), BELEG_LLM="extractive",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1")
    if port:
        env["BELEG_PORT"] = str(port)
    return env


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str], Path]]:
    """A Chroma server and two replicas (each with its own data folder, so nothing but the
    Chroma server is shared); yields the Chroma URL, the replica URLs and a work folder."""
    if not CHROMA.exists():
        pytest.skip("the chroma CLI is not installed in this environment")
    root = tmp_path_factory.mktemp("replicas")
    chroma = ChromaProcess(root / "db", root / "chroma.log").start()
    procs, urls = [], []
    try:
        for name in ("a", "b"):
            port = _free_port()
            log = (root / f"{name}.log").open("wb")
            procs.append(subprocess.Popen([sys.executable, "-m", "app.cli", "serve"],
                                          env=_env(chroma.url, root / name, port), cwd=root,
                                          stdout=subprocess.DEVNULL, stderr=log))
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 240
        for proc, url, name in zip(procs, urls, "ab"):
            while True:
                assert proc.poll() is None, (root / f"{name}.log").read_text()[-2000:]
                try:
                    if httpx.get(url + "/api/ready", timeout=2, trust_env=False
                                 ).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"replica {name} did not come up"
                time.sleep(0.5)
        yield chroma.url, urls, root
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        chroma.stop()


def _sources(url: str, question: str, collection: str | None = None) -> set[str]:
    body: dict[str, object] = {"question": question}
    if collection:
        body["collection"] = collection
    r = httpx.post(url + "/api/ask", json=body, timeout=120, trust_env=False)
    assert r.status_code == 200, r.text
    return {s["source"] for s in r.json()["sources"]}


def test_every_replica_sees_every_write(replicas: tuple[str, list[str], Path]) -> None:
    chroma_url, (a, b), root = replicas
    assert _sources(a, WERK_Q) == set()  # an empty store: nothing to cite
    # a CLI ingest (a third process) while both serve
    (root / "werk.txt").write_text(WERK, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "app.cli", "ingest", str(root / "werk.txt")],
                          env=_env(chroma_url, root / "cli"), cwd=root, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for url in (a, b):  # dense and lexical retrieval both see it: no restart
        assert _sources(url, WERK_Q) == {"werk.txt"}
        hits = httpx.post(url + "/api/search", json={"query": "Turbinenschaufeln Emmen"},
                          timeout=60, trust_env=False).json()["hits"]
        assert hits and hits[0]["source"] == "werk.txt" and hits[0]["lexical"] > 0
    # an upload into a new collection through one replica; the other serves it at once
    up = httpx.post(b + "/api/documents?collection=hr", timeout=120, trust_env=False,
                    files={"files": ("urlaub.txt", HR.encode(), "text/plain")})
    assert up.status_code == 200 and up.json()["added"] == ["urlaub.txt"], up.text
    names = [c["name"] for c in httpx.get(a + "/api/collections", timeout=30,
                                          trust_env=False).json()["collections"]]
    assert names == ["default", "hr"]
    assert _sources(a, "Wie viele Urlaubstage gibt es?", "hr") == {"urlaub.txt"}
    assert "urlaub.txt" not in _sources(a, "Wie viele Urlaubstage gibt es?")
    # a removal through one replica is gone from the other's answers and lexical index
    assert httpx.delete(a + "/api/documents/werk.txt", timeout=60,
                        trust_env=False).status_code == 200
    assert _sources(b, WERK_Q) == set()
    hits = httpx.post(b + "/api/search", json={"query": "Turbinenschaufeln Emmen"}, timeout=60,
                      trust_env=False).json()["hits"]
    assert hits == []
