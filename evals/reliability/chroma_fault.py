"""A Chroma server killed with SIGKILL and restarted while clients keep asking."""
from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from evals.reliability.server import BelegServer, free_port

logger = logging.getLogger(__name__)

CHROMA = Path(sys.executable).parent / "chroma"
QUESTIONS = ("Wie viele nordkoreanische Soldaten kämpfen im Ukraine-Krieg?",
             "What did North Korea deliver to Russia?",
             "Wann wurde der Vertrag unterzeichnet?")


@dataclass
class ChromaProcess:
    path: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> ChromaProcess:
        self.proc = subprocess.Popen(
            [str(CHROMA), "run", "--path", str(self.path), "--host", "127.0.0.1",
             "--port", str(self.port)], stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/api/v2/heartbeat", timeout=2,
                             trust_env=False).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.3)
        raise RuntimeError(f"chroma run did not come up; see {self.log_path}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass(frozen=True)
class Sample:
    phase: str
    started: float
    seconds: float
    status: int  # -1: no HTTP reply at all
    detail: str


@dataclass
class ChromaFaultResult:
    samples: list[Sample]
    recovery_s: float | None  # restart -> first good answer

    def by_phase(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for s in self.samples:
            row = out.setdefault(s.phase, {})
            row[str(s.status)] = row.get(str(s.status), 0) + 1
        return out

    @property
    def server_errors(self) -> int:
        return sum(1 for s in self.samples if s.status >= 500 and s.status != 503
                   or s.status == -1)

    @property
    def slowest_down_s(self) -> float:
        return max((s.seconds for s in self.samples if s.phase == "down"), default=0.0)


def run_chroma_fault(server: BelegServer, chroma: ChromaProcess, *, clients: int = 4,
                     before_s: float = 20.0, down_s: float = 20.0,
                     after_s: float = 30.0) -> ChromaFaultResult:
    """Clients ask in a loop; Chroma is killed after ``before_s``, restarted ``down_s`` later."""
    samples: list[Sample] = []
    lock = threading.Lock()
    phase = ["before"]
    stop = threading.Event()

    def worker(i: int) -> None:
        with server.client(timeout=60) as http:
            k = i
            while not stop.is_set():
                current, t0 = phase[0], time.monotonic()
                try:
                    r = http.post("/api/ask", json={"question": QUESTIONS[k % len(QUESTIONS)],
                                                    "mode": "extractive"})
                    status, detail = r.status_code, r.text[:200] if r.status_code != 200 else ""
                except httpx.HTTPError as exc:
                    status, detail = -1, repr(exc)[:200]
                with lock:
                    samples.append(Sample(current, t0, time.monotonic() - t0, status, detail))
                k += 1
                if status != 200:
                    time.sleep(0.2)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(before_s)
    logger.info("killing the Chroma server (pid %s)", chroma.proc.pid if chroma.proc else "?")
    chroma.kill()
    phase[0] = "down"
    time.sleep(down_s)
    chroma.start()
    restarted = time.monotonic()
    phase[0] = "after"
    logger.info("Chroma server restarted")
    time.sleep(after_s)
    stop.set()
    for t in threads:
        t.join(90)
    firsts = [s.started + s.seconds for s in samples
              if s.phase == "after" and s.status == 200]
    recovery = min(firsts) - restarted if firsts else None
    return ChromaFaultResult(samples, recovery)
