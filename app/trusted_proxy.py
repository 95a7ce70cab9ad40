"""A reverse proxy's word: X-Forwarded-* and (opt-in) its authenticated-user and groups headers.

Only a request whose TCP peer is one of the trusted proxies may speak for a user; from any
other address the headers are ignored, so a client that reaches beleg directly cannot claim to
be someone. The names follow Open WebUI's trusted-header convention (an e-mail or user header
and a comma-separated groups header, set by the proxy after its own login).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.access import Caller
from app.http_guard import ASGIApp, Receive, Scope, Send, header
from store.naming import DEFAULT_COLLECTION, CollectionNameError, checked_collection

logger = logging.getLogger(__name__)

# Peers whose X-Forwarded-For/-Proto (and, when configured, user headers) are believed.
DEFAULT_PROXIES = ("127.0.0.1", "::1")
# Where the TCP peer is kept before X-Forwarded-For replaces scope["client"].
PEER_KEY = "beleg.peer"
# What a user the proxy vouches for may do: read and ask; writes and admin need a key.
TRUSTED_SCOPES = ("read", "ask")
MAX_GROUPS = 100


@dataclass(frozen=True)
class TrustedHeaders:
    """Which headers name the user and their groups, and which peers may send them."""

    user_header: str
    groups_header: str = ""
    proxies: tuple[str, ...] = DEFAULT_PROXIES

    def caller(self, scope: Scope) -> Caller | None:
        """The user the proxy vouches for, or None (no header, or not from a trusted proxy).
        With a groups header, the user may use the collections named like their groups (the
        default collection only if a group says 'default'); without one, the default one."""
        user = header(scope, self.user_header.lower().encode()).strip()
        if not user:
            return None
        if scope.get(PEER_KEY) not in self.proxies:
            logger.warning("ignored %s from %s: not a trusted proxy (BELEG_TRUSTED_PROXIES)",
                           self.user_header, scope.get(PEER_KEY))
            return None
        if not self.groups_header:
            return Caller(user[:200], (DEFAULT_COLLECTION,), TRUSTED_SCOPES)
        named = []
        for group in header(scope, self.groups_header.lower().encode()).split(",")[:MAX_GROUPS]:
            group = group.strip().lower()
            if not group:  # checked_collection would read an empty name as the default one
                continue
            try:
                named.append(checked_collection(group))
            except CollectionNameError:
                continue  # a directory group that names no collection
        return Caller(user[:200], tuple(dict.fromkeys(named)), TRUSTED_SCOPES)


class RecordPeer:
    """Keeps the TCP peer under PEER_KEY, then lets uvicorn's ProxyHeadersMiddleware apply
    X-Forwarded-For and -Proto from the trusted proxies only."""

    def __init__(self, app: ASGIApp, proxies: Iterable[str]) -> None:
        self.app = app
        self.inner: Any = ProxyHeadersMiddleware(app, trusted_hosts=list(proxies))
        self.fastapi: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope[PEER_KEY] = (scope.get("client") or ("", 0))[0]
        await self.inner(scope, receive, send)
