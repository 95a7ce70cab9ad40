"""Clients asking in a loop against a real server: latency, errors and the server's memory over time."""
from __future__ import annotations

import json
import logging
import random
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from evals.reliability.server import BelegServer

logger = logging.getLogger(__name__)


def xquad_questions(*paths: Path, seed: int = 1) -> list[str]:
    """Every question of the given XQuAD files, shuffled: distinct texts, as real users send."""
    out = []
    for path in paths:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
        out += [q["question"] for a in data for p in a["paragraphs"] for q in p["qas"]]
    random.Random(seed).shuffle(out)
    return out


@dataclass
class LoadResult:
    clients: int
    mode: str
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (minute, MB)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def errors(self) -> int:
        return self.requests - self.statuses.get("200", 0)

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        if len(self.latencies) == 1:
            return self.latencies[0]
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(q) - 1]


def run_load(server: BelegServer, questions: Sequence[str], *, clients: int, seconds: float,
             mode: str | None = None, sample_every_s: float = 0.0) -> LoadResult:
    """``clients`` threads ask distinct questions back to back for ``seconds``; with
    ``sample_every_s`` the server's RSS is read that often."""
    result = LoadResult(clients, mode or "default", seconds)
    lock = threading.Lock()
    cursor = [0]
    t0 = time.monotonic()
    end = t0 + seconds

    def worker() -> None:
        with server.client(timeout=300) as http:
            while time.monotonic() < end:
                with lock:
                    question = questions[cursor[0] % len(questions)]
                    cursor[0] += 1
                body: dict[str, object] = {"question": question}
                if mode:
                    body["mode"] = mode
                started = time.monotonic()
                try:
                    status = str(http.post("/api/ask", json=body).status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                with lock:
                    result.latencies.append(time.monotonic() - started)
                    result.statuses[status] = result.statuses.get(status, 0) + 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    if sample_every_s:
        while time.monotonic() < end:
            result.rss_mb.append(((time.monotonic() - t0) / 60, server.rss_mb()))
            time.sleep(min(sample_every_s, max(0.0, end - time.monotonic())))
        result.rss_mb.append(((time.monotonic() - t0) / 60, server.rss_mb()))
    for t in threads:
        t.join(600)
    logger.info("%d clients, %s: %d requests, p50 %.2f s, p95 %.2f s, errors %d", clients,
                result.mode, result.requests, result.percentile(50), result.percentile(95),
                result.errors)
    return result


def drift_mb_per_10min(samples: Sequence[tuple[float, float]], warmup_min: float) -> float:
    """Least-squares slope of RSS after the warm-up, in MB per 10 minutes."""
    pts = [(m, mb) for m, mb in samples if m >= warmup_min]
    if len(pts) < 2:
        return float("nan")
    slope = statistics.linear_regression([m for m, _ in pts], [mb for _, mb in pts]).slope
    return slope * 10
