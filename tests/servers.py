"""Real uvicorn servers for HTTP, gradio_client and browser tests.

``serve(app)`` runs an ASGI app with ``uvicorn.Server`` on 127.0.0.1 in a background thread,
on a socket bound to port 0 (so the free port is never raced), waits until /api/health answers and
shuts the server down cleanly at exit. The fixtures below are imported by the test modules that use
them (``from servers import live_server, ...``); each importing module gets its own server.
"""
from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

TOKEN = "s3cret"
STARTUP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class LiveServer:
    url: str  # e.g. "http://127.0.0.1:43817" (no trailing slash)
    token: str = ""

    def client(self, *, token: str | None = None, timeout: float = 180.0) -> httpx.Client:
        """An httpx client on this server; sends the server's token unless ``token`` is given."""
        token = self.token if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout, trust_env=False)


@contextmanager
def serve(app: Any, *, token: str = "", port: int = 0) -> Iterator[LiveServer]:
    """Serve ``app`` with a real uvicorn server until the block exits (on ``port``, or on a
    free one)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            access_log=False, lifespan="on", timeout_graceful_shutdown=5,
                            proxy_headers=False,  # as `beleg serve`: the app applies them
                            ws="none",
                            # uvicorn drops idle keep-alive connections after 5 s by default;
                            # a test that pauses that long then reuses a pooled connection
                            # just as the server closes it ("disconnected without response").
                            timeout_keep_alive=120)
    server = uvicorn.Server(config)
    errors: list[BaseException] = []
    loops: list[asyncio.AbstractEventLoop] = []

    async def main() -> None:
        loops.append(asyncio.get_running_loop())
        await server.serve(sockets=[sock])

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - surfaced by the startup wait below
            errors.append(exc)

    thread = threading.Thread(target=run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    try:
        with httpx.Client(timeout=5.0, trust_env=False) as probe:
            while True:
                if errors or not thread.is_alive():
                    raise RuntimeError(f"uvicorn did not start: {errors or 'thread ended'}")
                if server.started:
                    try:
                        if probe.get(url + "/api/health").status_code < 500:
                            break
                    except httpx.TransportError:
                        pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url}/api/health did not answer in {STARTUP_TIMEOUT_S}s")
                time.sleep(0.05)
        yield LiveServer(url, token)
    finally:
        # Mounted Gradio apps hold heartbeat streams open (gradio_client, browsers) until their
        # stop_event fires, as Blocks.close() does; otherwise shutdown waits for the grace period.
        for route in getattr(getattr(app, "fastapi", None) or app, "routes", []):
            stop = getattr(getattr(route, "app", None), "stop_event", None)
            if stop is not None and loops and not loops[0].is_closed():
                loops[0].call_soon_threadsafe(stop.set)
        server.should_exit = True
        thread.join(timeout=15)
        if thread.is_alive():  # pragma: no cover - only if a connection refuses to close
            server.force_exit = True
            thread.join(timeout=5)
        sock.close()
        assert not thread.is_alive(), f"uvicorn on port {port} did not shut down"


@pytest.fixture(scope="module")
def live_server(seed_engine: Any) -> Iterator[LiveServer]:
    """create_app(seed_engine) with the web chat, no token."""
    from app.api import create_app

    with serve(create_app(seed_engine)) as server:
        yield server


@pytest.fixture(scope="module")
def token_server(seed_engine: Any) -> Iterator[LiveServer]:
    """create_app(seed_engine, api_token="s3cret") with the web chat."""
    from app.api import create_app

    with serve(create_app(seed_engine, api_token=TOKEN), token=TOKEN) as server:
        yield server


def prefix_proxy(upstream: str, prefix: str) -> Any:
    """A reverse proxy as nginx's ``location /beleg/ { proxy_pass http://upstream/; }`` is:
    requests under ``prefix`` go to ``upstream`` without it, with X-Forwarded-Host, -Proto and
    -Prefix set; answers stream back as they come (server-sent events included), every
    Set-Cookie kept. ``/api/health`` is passed through for ``serve``'s start-up wait."""
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    client = httpx.AsyncClient(base_url=upstream, timeout=None, trust_env=False)
    hop = {b"host", b"connection", b"keep-alive", b"transfer-encoding", b"upgrade"}

    async def forward(request: Request) -> Response:
        path = request.url.path
        if path != "/api/health" and not (path == prefix or path.startswith(prefix + "/")):
            return Response("not proxied", status_code=404)
        target = path[len(prefix):] or "/" if path.startswith(prefix) else path
        headers = [(k, v) for k, v in request.headers.raw if k.lower() not in hop]
        headers += [(b"x-forwarded-host", request.headers.get("host", "").encode()),
                    (b"x-forwarded-proto", b"http"), (b"x-forwarded-prefix", prefix.encode())]
        upstream_request = client.build_request(
            request.method, target, params=request.url.query or None, headers=headers,
            content=await request.body())
        answer = await client.send(upstream_request, stream=True)
        response = StreamingResponse(answer.aiter_raw(), status_code=answer.status_code,
                                     background=BackgroundTask(answer.aclose))
        response.raw_headers = [(k, v) for k, v in answer.headers.raw if k.lower() not in hop]
        return response

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
    return Starlette(routes=[Route("/{path:path}", forward, methods=methods)])


def static_site(pages: dict[str, str]) -> Any:
    """A site of another origin serving the given HTML pages (path -> HTML)."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    def page_route(path: str, html: str) -> Route:
        return Route(path, lambda _request: HTMLResponse(html))

    routes = [page_route(p, h) for p, h in pages.items()]
    routes.append(Route("/api/health", lambda _request: JSONResponse({"status": "ok"})))
    return Starlette(routes=routes)
