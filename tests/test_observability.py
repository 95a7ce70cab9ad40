"""Metrics, request ids, JSON request logs, liveness and readiness over a real uvicorn server."""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import httpx
import pytest
from servers import TOKEN, LiveServer, live_server, token_server  # noqa: F401 (fixtures)

from app.observability import ACCESS_LOGGER

DE_Q = "Wie viele nordkoreanische Soldaten kämpfen im Ukraine-Krieg?"
REFUSE_Q = "What is the population of North Korea?"


@pytest.fixture(scope="module")
def http(live_server: LiveServer) -> Iterator[httpx.Client]:  # noqa: F811
    with live_server.client() as client:
        yield client


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when it is absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        metric, _, value = line.rpartition(" ")
        got = dict(re.findall(r'(\w+)="([^"]*)"', metric))
        if metric.split("{")[0] == name and got == labels:
            return float(value)
    return 0.0


def test_metrics_count_requests_answers_and_refusals(http: httpx.Client) -> None:
    before = http.get("/metrics")
    assert before.status_code == 200
    assert before.headers["content-type"].startswith("text/plain")
    a = http.post("/api/ask", json={"question": DE_Q}).json()
    r = http.post("/api/ask", json={"question": REFUSE_Q}).json()
    assert r["kind"] == "refused"
    after = http.get("/metrics").text
    asks = {"method": "POST", "route": "/api/ask", "status": "200"}
    assert sample(after, "beleg_http_requests_total", **asks) == \
        sample(before.text, "beleg_http_requests_total", **asks) + 2
    kind = {"kind": a["kind"], "mode": a["mode"]}
    assert sample(after, "beleg_answers_total", **kind) >= \
        sample(before.text, "beleg_answers_total", **kind) + 1
    assert sample(after, "beleg_refusals_total") == sample(before.text, "beleg_refusals_total") + 1
    # latency histograms by route template, never by raw path
    assert sample(after, "beleg_http_request_seconds_count", route="/api/ask") >= 2
    assert 'le="0.1"' in after and "beleg_answer_seconds_bucket" in after
    http.get("/api/documents/000_218c33ea26fbfb53.txt")
    scraped = http.get("/metrics").text
    assert sample(scraped, "beleg_http_requests_total", method="GET",
                  route="/api/documents/{source:path}", status="200") >= 1
    assert "000_218c33ea26fbfb53" not in scraped


def test_request_id_is_returned_and_kept_from_a_proxy(http: httpx.Client) -> None:
    own = http.get("/api/live")
    assert own.status_code == 200 and own.json() == {"status": "alive"}
    assert re.fullmatch(r"[0-9a-f]{32}", own.headers["x-request-id"])
    assert http.get("/api/live").headers["x-request-id"] != own.headers["x-request-id"]
    kept = http.get("/api/live", headers={"X-Request-ID": "proxy-42.a"})
    assert kept.headers["x-request-id"] == "proxy-42.a"
    hostile = http.get("/api/live", headers={"X-Request-ID": "x" * 65})
    assert re.fullmatch(r"[0-9a-f]{32}", hostile.headers["x-request-id"])
    # errors carry it too
    assert http.get("/api/documents/nope.txt").headers["x-request-id"]


def test_one_json_log_line_per_request(http: httpx.Client) -> None:
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    log = logging.getLogger(ACCESS_LOGGER)
    keep = Keep()
    log.addHandler(keep)
    try:
        r = http.post("/api/search", json={"query": "Soldaten", "k": 2},
                      headers={"X-Request-ID": "trace-7"})
        assert r.status_code == 200
    finally:
        log.removeHandler(keep)
    records = [json.loads(line) for line in lines]
    mine = [x for x in records if x["request_id"] == "trace-7"]
    assert len(mine) == 1
    assert mine[0] | {"ms": 0, "ts": 0} == {
        "ts": 0, "request_id": "trace-7", "method": "POST", "path": "/api/search",
        "route": "/api/search", "status": 200, "ms": 0, "client": "127.0.0.1"}
    assert mine[0]["ms"] > 0


def test_ready_reports_the_store(http: httpx.Client) -> None:
    r = http.get("/api/ready")
    assert r.status_code == 200 and r.json()["status"] == "ready" and r.json()["chunks"] > 0


def test_metrics_need_the_token_when_one_is_set(token_server: LiveServer) -> None:  # noqa: F811
    with token_server.client(token="") as anon:
        assert anon.get("/metrics").status_code == 401
        assert anon.get("/api/live").status_code == 200
        assert anon.get("/api/ready").status_code == 200
    with token_server.client() as authed:
        assert "beleg_http_requests_total" in authed.get("/metrics").text
