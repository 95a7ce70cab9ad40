"""Who may call what: the legacy shared token, or API keys with scopes (see app/keys.py)."""
from __future__ import annotations

import secrets
from dataclasses import dataclass

from app.keys import ALL_COLLECTIONS, ApiKey, KeyStore


class AccessDenied(Exception):
    """401 (no valid credential) or 403 (a valid key without the scope); the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Caller:
    """Who is calling, and the collections they may use (ALL_COLLECTIONS: every one)."""

    name: str
    collections: tuple[str, ...] = (ALL_COLLECTIONS,)
    scopes: tuple[str, ...] = ("admin",)  # 'admin' includes every scope

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes

    def may_use(self, collection: str) -> bool:
        return ALL_COLLECTIONS in self.collections or collection in self.collections

    def usable(self, names: list[str]) -> list[str]:
        """Those of ``names`` this caller may use, in their order."""
        return [n for n in names if self.may_use(n)]

    def check(self, collection: str) -> None:
        """AccessDenied (403) unless this caller may use the collection. Asked before the
        collection is looked up, so the answer is the same whether or not it exists."""
        if not self.may_use(collection):
            raise AccessDenied(403, f"the key '{self.name}' may not use the collection "
                                    f"'{collection}'; it may use {', '.join(self.collections)}")


def bearer(authorization: str) -> str:
    """The credential of an ``Authorization: Bearer <x>`` header ('' for any other scheme)."""
    return authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""


class Access:
    """Open when there is no token, no key and no trusted proxy header (loopback development);
    otherwise every protected route needs the token (all scopes), a live key with the route's
    scope, or a user a trusted proxy vouches for (app/trusted_proxy.py)."""

    def __init__(self, api_token: str = "", keys: KeyStore | None = None,
                 proxy_users: bool = False) -> None:
        self.api_token = api_token
        self.keys = keys
        self.proxy_users = proxy_users
        # Users the proxy vouched for at the chat, by name: what their sessions may use.
        self.vouched: dict[str, Caller] = {}

    @property
    def required(self) -> bool:
        return bool(self.api_token) or self.proxy_users or (
            self.keys is not None and self.keys.configured())

    def _is_token(self, secret: str) -> bool:
        return bool(self.api_token) and secrets.compare_digest(
            secret.encode("utf-8", "surrogateescape"), self.api_token.encode("utf-8"))

    def who(self, secret: str, scope: str, vouched: Caller | None = None) -> Caller:
        """The caller ('anonymous' when access is open, 'token', the key, or the user a trusted
        proxy vouched for when no credential is sent), or AccessDenied."""
        if not self.required:
            return Caller("anonymous")
        if secret and self._is_token(secret):
            return Caller("token")
        if not secret and vouched is not None:
            if not vouched.allows(scope):
                raise AccessDenied(403, f"'{vouched.name}' is signed in through the proxy, which "
                                        f"allows {', '.join(vouched.scopes)}; '{scope}' needs an "
                                        "API key with that scope")
            return vouched
        key: ApiKey | None = self.keys.verify(secret) if self.keys is not None and secret \
            else None
        if key is None:
            what = "<API key or BELEG_API_TOKEN>" if self.api_token else "<API key>"
            raise AccessDenied(401, f"missing, wrong or revoked API key or token; send "
                                    f"'Authorization: Bearer {what}' (create a key with "
                                    "`beleg keys create`)")
        if not key.allows(scope):
            raise AccessDenied(403, f"the key '{key.name}' lacks the scope '{scope}' (it has "
                                    f"{', '.join(key.scopes)}); create a key with "
                                    f"--scope {scope}")
        return Caller(key.name, key.collections, key.scopes)

    def login(self, user: str, secret: str) -> bool:
        """The chat's login: the token (any name), or a key that may ask with its own name,
        so that the name then tells which collections the session may use."""
        if not self.required:
            return True
        if secret and self._is_token(secret):
            return True
        key = self.keys.verify(secret) if self.keys is not None and secret else None
        return key is not None and key.allows("ask") and key.name == user.strip()

    def caller_named(self, user: str | None) -> Caller | None:
        """The caller of a logged-in chat session (see ``login``); None when its key has been
        revoked or lost the scope since, so the session can no longer ask."""
        if not self.required:
            return Caller("anonymous")
        if self.proxy_users:  # the chat's sessions are the proxy's users, not key logins
            return self.vouched.get((user or "").strip())
        keys = self.keys.keys() if self.keys is not None else []
        named = [k for k in keys if k.name == (user or "").strip()]
        live = [k for k in named if k.revoked is None]
        if live:
            key = live[0]
            return Caller(key.name, key.collections, key.scopes) if key.allows("ask") else None
        return Caller("token") if self.api_token and not named else None

    def allows(self, secret: str, scope: str) -> bool:
        try:
            self.who(secret, scope)
            return True
        except AccessDenied:
            return False
