"""`beleg serve` as a real process: it answers, holds the embedded store, and stops on SIGTERM."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_stops_on_sigterm_and_releases_the_store(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BELEG_")}
    env.update(BELEG_DATA_DIR=str(tmp_path / "data"), BELEG_LLM="extractive",
               BELEG_PORT=str(port), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, log.read_text()[-2000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.5)
        from store.serve_lock import StoreBusy, exclusive_write

        with pytest.raises(StoreBusy, match="serving the store"):
            with exclusive_write(tmp_path / "data"):
                pass
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down, then re-raises the signal it caught: exit by SIGTERM is the
        # convention, after a clean shutdown (its log says so).
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
        assert time.monotonic() - started < 30
        assert "Finished server process" in log.read_text()
        with exclusive_write(tmp_path / "data"):  # released with the process
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
