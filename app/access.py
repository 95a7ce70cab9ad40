"""Who may call what: the legacy shared token, or API keys with scopes (see app/keys.py)."""
from __future__ import annotations

import secrets

from app.keys import ApiKey, KeyStore


class AccessDenied(Exception):
    """401 (no valid credential) or 403 (a valid key without the scope); the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def bearer(authorization: str) -> str:
    """The credential of an ``Authorization: Bearer <x>`` header ('' for any other scheme)."""
    return authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""


class Access:
    """Open when neither a token nor any key exists (loopback development); otherwise every
    protected route needs the token (all scopes) or a live key with the route's scope."""

    def __init__(self, api_token: str = "", keys: KeyStore | None = None) -> None:
        self.api_token = api_token
        self.keys = keys

    @property
    def required(self) -> bool:
        return bool(self.api_token) or (self.keys is not None and self.keys.configured())

    def _is_token(self, secret: str) -> bool:
        return bool(self.api_token) and secrets.compare_digest(
            secret.encode("utf-8", "surrogateescape"), self.api_token.encode("utf-8"))

    def who(self, secret: str, scope: str) -> str:
        """The caller's name ('token' or the key's name), or AccessDenied."""
        if not self.required:
            return "anonymous"
        if secret and self._is_token(secret):
            return "token"
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
        return key.name

    def allows(self, secret: str, scope: str) -> bool:
        try:
            self.who(secret, scope)
            return True
        except AccessDenied:
            return False
