"""Embedding rules over real HTTP: frame-ancestors and CORS for allowed origins only, and the
chat and API under a path prefix behind a reverse proxy."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from servers import LiveServer, prefix_proxy, serve

PORTAL = "https://intranet.example"
OTHER = "https://evil.example"


@pytest.fixture(scope="module")
def closed(seed_engine: Any) -> Iterator[LiveServer]:
    from app.api import create_app

    with serve(create_app(seed_engine)) as server:
        yield server


@pytest.fixture(scope="module")
def portal(seed_engine: Any) -> Iterator[LiveServer]:
    from app.api import create_app

    with serve(create_app(seed_engine, allowed_origins=(PORTAL,))) as server:
        yield server


def test_no_origin_may_frame_by_default(closed: LiveServer) -> None:
    with closed.client() as http:
        for path in ("/", "/api/health", "/gradio_api/info"):
            r = http.get(path)
            assert r.headers["content-security-policy"] == "frame-ancestors 'self'", path
            assert r.headers["x-frame-options"] == "SAMEORIGIN"
        # and no script of another origin may read the API
        r = http.get("/api/documents", headers={"Origin": PORTAL})
        assert "access-control-allow-origin" not in r.headers
        pre = http.options("/api/ask", headers={"Origin": PORTAL,
                                                "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in pre.headers


def test_an_allowed_origin_may_frame_and_call(portal: LiveServer) -> None:
    with portal.client() as http:
        page = http.get("/")
        assert page.headers["content-security-policy"] == f"frame-ancestors 'self' {PORTAL}"
        assert "x-frame-options" not in page.headers  # it cannot name an allowlist
        pre = http.options("/api/ask", headers={
            "Origin": PORTAL, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == PORTAL
        assert "authorization" in pre.headers["access-control-allow-headers"].lower()
        r = http.post("/api/ask", json={"question": "Wie viele Soldaten?"},
                      headers={"Origin": PORTAL})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == PORTAL
        assert "x-request-id" in r.headers["access-control-expose-headers"].lower()
        # another origin gets neither
        bad = http.options("/api/ask", headers={"Origin": OTHER,
                                                "Access-Control-Request-Method": "POST"})
        assert bad.status_code == 400 and "access-control-allow-origin" not in bad.headers
        assert http.post("/api/ask", json={"question": "x"},
                         headers={"Origin": OTHER}).status_code == 403


@pytest.fixture(scope="module")
def proxied(seed_engine: Any) -> Iterator[LiveServer]:
    """beleg with BELEG_ROOT_PATH=/beleg behind a proxy that strips /beleg."""
    from app.api import create_app

    with serve(create_app(seed_engine, root_path="/beleg")) as backend, \
            serve(prefix_proxy(backend.url, "/beleg")) as proxy:
        yield proxy


def test_under_a_path_prefix(proxied: LiveServer) -> None:
    with proxied.client() as http:
        page = http.get("/beleg/")
        assert page.status_code == 200 and "gradio" in page.text.lower()
        config = http.get("/beleg/config").json()
        assert config["root"].endswith("/beleg"), config["root"]
        r = http.post("/beleg/api/ask", json={"question": "Wie viele nordkoreanische Soldaten "
                                                          "kämpfen im Ukraine-Krieg?"})
        assert r.status_code == 200 and "15'000" in r.json()["answer"]
        models = http.get("/beleg/v1/models")
        assert models.status_code == 200 and models.json()["data"]
        with http.stream("POST", "/beleg/api/ask?stream=true",
                         json={"question": "Wie viele Soldaten?"}) as s:
            events = [line for line in s.iter_lines() if line.startswith("event:")]
        assert events[0] == "event: sources" and events[-1] == "event: final"
