"""Memory of a serving process: `beleg serve` over the seed corpus, RSS after start and after
5 and 25 questions, for the extractive and the local configuration, in one run.

Prints Markdown and writes reports/bench/serve_memory.json. Not part of `make test`.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = ["Wie viele nordkoreanische Soldaten kämpfen im Ukraine-Krieg?",
             "How many North Korean soldiers have died?", "Wie viel kam von Russland zurück?",
             "Was liefert Nordkorea an Russland?", "Wie hoch ist die Inflation?"]
logger = logging.getLogger("bench.serve_memory")


def rss_mb(pid: int) -> float:
    """VmRSS of a process and its children, in MB (shared pages count once per process)."""
    total = 0
    pids = [pid]
    try:
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1)


def measure(mode: str, data: Path) -> dict[str, float]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "BELEG_DATA_DIR": str(data), "BELEG_LLM": mode,
           "BELEG_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(url + "/api/ready", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"beleg serve ({mode}) did not come up")
            time.sleep(0.5)
        out = {"after_start": rss_mb(proc.pid)}
        with httpx.Client(base_url=url, timeout=300, trust_env=False) as http:
            for q in QUESTIONS:
                http.post("/api/ask", json={"question": q})
            out["after_5"] = rss_mb(proc.pid)
            for i in range(20):
                http.post("/api/ask", json={"question": QUESTIONS[i % len(QUESTIONS)]})
            out["after_25"] = rss_mb(proc.pid)
        return out
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--modes", nargs="+", default=["extractive", "local"])
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "bench")
    args = ap.parse_args()
    models = REPO / "data" / "models"
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        if models.is_dir():  # reuse the assembled models instead of building them again
            (data / "models").symlink_to(models)
        subprocess.run([sys.executable, "-m", "app.cli", "ingest", str(REPO / "corpus")],
                       cwd=REPO, env={**os.environ, "BELEG_DATA_DIR": str(data)}, check=True,
                       stdout=subprocess.DEVNULL)
        rows = {mode: measure(mode, data) for mode in args.modes}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve_memory.json").write_text(json.dumps(
        {"cores": os.cpu_count(), "rss_mb": rows}, indent=1), encoding="utf-8")
    logger.info("| BELEG_LLM | RSS after start | after 5 questions | after 25 |\n|---|---|---|---|")
    for mode, r in rows.items():
        logger.info("| %s | %s MB | %s MB | %s MB |", mode, r["after_start"], r["after_5"],
                    r["after_25"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
