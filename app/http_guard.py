"""ASGI guards in front of every route: body limit, same-origin writes, closed paths, login throttle."""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import urlsplit

from app.openai_errors import error_body, is_v1_path

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Methods that change state; a browser sends them cross-site without asking (forms, fetch
# with a simple content type), so they must come from the page's own origin.
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class _BodyTooLarge(Exception):
    pass


async def _reply(scope: Scope, send: Send, status: int, detail: str,
                 headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """A JSON error: {"detail": ...}, or OpenAI's error shape under /v1."""
    shaped = error_body(status, detail) if is_v1_path(scope.get("path", ""),
                                                       scope.get("root_path", "")) \
        else {"detail": detail}
    body = json.dumps(shaped).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuses a request body over ``max_bytes`` with 413, by its Content-Length or, when it is
    streamed without one, as soon as the bytes received pass the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = (f"the request body is larger than {self.max_bytes} bytes, the server's limit "
                  "(BELEG_MAX_REQUEST_BYTES)")
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _reply(scope, send, 400, "malformed Content-Length header")
                    return
                if declared > self.max_bytes:
                    await _reply(scope, send, 413, detail)
                    return
        seen = 0
        started = over = False

        async def counted() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    over = True
                    raise _BodyTooLarge
            return message

        async def tracked(message: Message) -> None:
            # Once the body is over the limit, whatever the app answers (a framework may turn
            # the aborted read into its own 400) is replaced by the 413.
            nonlocal started
            if over:
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _reply(scope, send, 413, detail)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _BodyTooLarge:
            if not started:
                started = True
                await _reply(scope, send, 413, detail)


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


class SameOriginWrites:
    """Refuses state-changing requests that a web page of another origin sent (403).

    A browser names the page's origin in ``Origin`` (and ``Sec-Fetch-Site``) on every
    cross-site POST; command-line clients send neither and pass. Same origin means the
    ``Origin`` host is the request's own ``Host`` (or ``X-Forwarded-Host`` behind a reverse
    proxy); other origins pass only when listed in ``allowed`` (BELEG_ALLOWED_ORIGINS).
    """

    def __init__(self, app: ASGIApp, allowed: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = {_origin_of(a.strip()) for a in allowed if a.strip()}

    def _permitted(self, scope: Scope) -> bool:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", ())}
        origin = headers.get("origin")
        if origin is None:
            return headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")
        origin = _origin_of(origin)
        if not origin:  # "null": a sandboxed frame, a file:// page, a redirect
            return False
        if origin in self.allowed:
            return True
        hosts = {headers.get("host", "").lower()}
        hosts |= {h.strip().lower() for h in headers.get("x-forwarded-host", "").split(",")}
        return urlsplit(origin).netloc in hosts - {""}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") in UNSAFE_METHODS \
                and not self._permitted(scope):
            logger.warning("refused a cross-origin %s %s", scope.get("method"), scope.get("path"))
            await _reply(scope, send, 403, "cross-origin writes are refused: send the request from "
                                    "beleg's own page, or add your site's origin to "
                                    "BELEG_ALLOWED_ORIGINS")
            return
        await self.app(scope, receive, send)


class ClosedPaths:
    """Answers 404 for framework routes beleg does not offer: Gradio's file upload (the chat
    has no upload component, yet the route would keep any file sent to it) and, with a token,
    the frameworks' API documentation pages."""

    def __init__(self, app: ASGIApp, paths: Iterable[str]) -> None:
        self.app = app
        self.paths = frozenset(p.rstrip("/") for p in paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path, root = scope.get("path", ""), scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root):]
            if path.rstrip("/") in self.paths:
                await _reply(scope, send, 404, "not found")
                return
        await self.app(scope, receive, send)


class SessionRequired:
    """With a token, answers 401 on the chat's session routes (reset, cancel, heartbeat) unless
    the request comes from a logged-in browser session or carries the token; Gradio leaves those
    routes open even when its login is on."""

    def __init__(self, app: ASGIApp, prefixes: Iterable[str],
                 allowed: Callable[[Scope], bool]) -> None:
        self.app = app
        self.prefixes = tuple(p.rstrip("/") for p in prefixes)
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path, root = scope.get("path", ""), scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root):]
            path = path.rstrip("/")
            if any(path == p or path.startswith(p + "/") for p in self.prefixes) \
                    and not self.allowed(scope):
                await _reply(scope, send, 401, "log in first")
                return
        await self.app(scope, receive, send)


def header(scope: Scope, name: bytes) -> str:
    """The first value of header ``name`` (lower case) in ``scope``, or ""."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return ""


def cookies(scope: Scope) -> dict[str, str]:
    """The request's cookies by name."""
    jar = SimpleCookie()
    try:
        jar.load(header(scope, b"cookie"))
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


# Failed logins allowed per client address within the window before 429. Five a minute lets a
# person mistype a few times; a guesser gets 7,200 tries a day instead of thousands a second.
LOGIN_FAILURES = 5
LOGIN_WINDOW_S = 60.0


class LoginThrottle:
    """Counts failed logins (a 4xx answer to POST .../login) per client address and refuses
    further attempts with 429 once LOGIN_FAILURES fell within LOGIN_WINDOW_S."""

    def __init__(self, app: ASGIApp, failures: int = LOGIN_FAILURES,
                 window_s: float = LOGIN_WINDOW_S) -> None:
        self.app = app
        self.failures = failures
        self.window_s = window_s
        self._clock = time.monotonic
        self._seen: dict[str, list[float]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (scope["type"] == "http" and scope.get("method") == "POST"
                and scope.get("path", "").rstrip("/").endswith("/login")):
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("?", 0))[0]
        now = self._clock()
        recent = [t for t in self._seen.get(client, []) if now - t < self.window_s]
        if len(self._seen) > 10_000:  # a flood of addresses must not grow this without end
            self._seen.clear()
        self._seen[client] = recent
        if len(recent) >= self.failures:
            wait = int(self.window_s - (now - recent[0])) + 1
            await _reply(scope, send, 429, f"too many failed logins; try again in {wait} s",
                         [(b"retry-after", str(wait).encode())])
            return

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start" and 400 <= message["status"] < 500:
                self._seen.setdefault(client, []).append(self._clock())
            await send(message)

        await self.app(scope, receive, watched)
