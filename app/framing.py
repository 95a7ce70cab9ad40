"""Who may embed beleg: frame-ancestors for the chat in an iframe, CORS for the API from scripts."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.middleware.cors import CORSMiddleware

from app.http_guard import ASGIApp, Message, Receive, Scope, Send

# Headers a page of an allowed origin may send to the API, and the one it may read back.
CORS_HEADERS = ["Authorization", "Content-Type", "X-Request-ID"]
CORS_METHODS = ["GET", "POST", "DELETE"]
# How long a browser may keep a preflight's answer (seconds).
CORS_MAX_AGE = 600


def frame_headers(allowed: Iterable[str]) -> list[tuple[bytes, bytes]]:
    """CSP frame-ancestors: the page itself and the allowed origins only. Without any, also
    X-Frame-Options SAMEORIGIN for browsers that know no CSP (with a list it would block it)."""
    origins = " ".join(allowed)
    policy = f"frame-ancestors 'self'{' ' + origins if origins else ''}".encode()
    out = [(b"content-security-policy", policy)]
    if not origins:
        out.append((b"x-frame-options", b"SAMEORIGIN"))
    return out


class FramePolicy:
    """Adds the frame headers to every HTTP response, replacing any the app set."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str] = ()) -> None:
        self.app = app
        self.headers = frame_headers(allowed)
        self.names = {name for name, _ in self.headers} | {b"x-frame-options"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", ())
                        if k.lower() not in self.names]
                message = {**message, "headers": kept + self.headers}
            await send(message)

        await self.app(scope, receive, stamped)


def embeddable(app: ASGIApp, allowed: tuple[str, ...]) -> Any:
    """The app with its frame policy and, for allowed origins only, CORS (none by default)."""
    framed: Any = FramePolicy(app, allowed)
    if not allowed:
        return framed
    return CORSMiddleware(framed, allow_origins=list(allowed), allow_methods=CORS_METHODS,
                          allow_headers=CORS_HEADERS, expose_headers=["X-Request-ID"],
                          allow_credentials=False, max_age=CORS_MAX_AGE)
