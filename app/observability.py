"""Prometheus metrics and JSON request logs with a request id, as one ASGI middleware."""
from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from app.http_guard import ASGIApp, Message, Receive, Scope, Send, header

ACCESS_LOGGER = "beleg.access"
REQUEST_ID_HEADER = "x-request-id"
# A client's own request id is kept when it looks like one (a proxy's id); otherwise a new one.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# Latency buckets (seconds): retrieval-only answers take tens of milliseconds, generated
# ones seconds, a queued question up to the 60 s slot timeout.
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The counters and histograms of one app (a registry of its own, so apps never share)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("beleg_http_requests", "HTTP requests by route and status",
                                ("method", "route", "status"), registry=self.registry)
        self.latency = Histogram("beleg_http_request_seconds", "HTTP request duration",
                                 ("route",), buckets=BUCKETS, registry=self.registry)
        self.answers = Counter("beleg_answers", "answers by kind (answered, candidates, "
                               "refused) and mode", ("kind", "mode"), registry=self.registry)
        self.answer_latency = Histogram("beleg_answer_seconds", "time to the final answer",
                                        ("kind",), buckets=BUCKETS, registry=self.registry)
        self.refusals = Counter("beleg_refusals", "answers that refused",
                                registry=self.registry)
        self.verification_drops = Counter(
            "beleg_verification_drops", "generated sentences dropped by the claim check",
            registry=self.registry)
        self.conflicts = Counter("beleg_conflicts", "answers that showed disagreeing sources",
                                 registry=self.registry)
        self.backend_errors = Counter("beleg_backend_errors", "answers whose LLM backend failed "
                                      "(answered from quotes instead)", registry=self.registry)

    def observe_answer(self, answer: Any) -> None:
        """Count one final answer (an app.engine.Answer)."""
        self.answers.labels(answer.kind, answer.mode).inc()
        self.answer_latency.labels(answer.kind).observe(answer.total_ms / 1000)
        if answer.refused:
            self.refusals.inc()
        if answer.unverified:
            self.verification_drops.inc(len(answer.unverified))
        if answer.conflict:
            self.conflicts.inc()
        if answer.backend_error:
            self.backend_errors.inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def access_logger() -> logging.Logger:
    """The request log: one JSON object per line on stderr, apart from the other logs."""
    log = logging.getLogger(ACCESS_LOGGER)
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.propagate = False
        log.setLevel(logging.INFO)
    return log


def _route(scope: Scope) -> str:
    """The route's template (never the raw path: ids and names would explode the labels)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path:
        return path
    raw = scope.get("path", "")
    return "/gradio" if "gradio_api" in raw else "other"


class Observed:
    """Gives every HTTP request an id (``X-Request-ID``, kept from the client when well formed),
    returns it as a header, logs one JSON line when the response ends, and counts it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.log = access_logger()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = header(scope, REQUEST_ID_HEADER.encode())
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []),
                                      (REQUEST_ID_HEADER.encode(), request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - started
            route = _route(scope)
            self.metrics.requests.labels(scope.get("method", ""), route, str(status)).inc()
            self.metrics.latency.labels(route).observe(seconds)
            self.log.info(json.dumps({
                "ts": round(time.time(), 3), "request_id": request_id,
                "method": scope.get("method"), "path": scope.get("path"), "route": route,
                "status": status, "ms": round(seconds * 1000, 1),
                "client": (scope.get("client") or ("", 0))[0]}, ensure_ascii=False))
