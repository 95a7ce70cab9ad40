"""API keys: named, scoped, hashed at rest, shown once, revocable while the server runs."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from store.naming import CollectionNameError, checked_collection

logger = logging.getLogger(__name__)

# What a key may do. 'admin' includes every other scope.
SCOPES = ("read", "ask", "write", "admin")
SCOPE_HELP = {"read": "list, read and search documents", "ask": "ask questions (/api/ask, /v1)",
              "write": "upload and delete documents", "admin": "everything, metrics included"}
PREFIX = "blg_"
# A key's collections: names, or ALL_COLLECTIONS for every one (those created later included).
# A key made without a choice reads only the default collection, so a new collection is never
# opened to old keys by accident; records written before collections existed read the same way.
ALL_COLLECTIONS = "*"
DEFAULT_KEY_COLLECTIONS = ("default",)
# 32 random bytes: a key is never guessed, so one fast hash (SHA-256) is enough to keep the
# file useless to a reader; slow password hashes are for low-entropy secrets.
KEY_BYTES = 32
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ApiKeyError(ValueError):
    """A key name, scope or file that cannot be used (the message says what to change)."""


@dataclass(frozen=True)
class ApiKey:
    """One key's record; the secret itself is never stored, only its SHA-256."""

    id: str
    name: str
    scopes: tuple[str, ...]
    hash: str
    created: float
    revoked: float | None = None
    collections: tuple[str, ...] = DEFAULT_KEY_COLLECTIONS

    def allows(self, scope: str) -> bool:
        return self.revoked is None and ("admin" in self.scopes or scope in self.scopes)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "scopes": list(self.scopes),
                "collections": list(self.collections), "created": self.created,
                "revoked": self.revoked}


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


class KeyStore:
    """Keys in one JSON file (mode 0600, replaced atomically). A running server re-reads the
    file when it changes, so `beleg keys revoke` takes effect at once."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._keys: list[ApiKey] = []

    # ---- reading
    def _load(self) -> list[ApiKey]:
        with self._lock:
            try:
                st = self.path.stat()
            except FileNotFoundError:
                self._stamp, self._keys = None, []
                return []
            stamp = (st.st_mtime, st.st_size)
            if stamp != self._stamp:
                try:
                    raw = json.loads(self.path.read_text(encoding="utf-8"))
                    self._keys = [ApiKey(**{**k, "scopes": tuple(k["scopes"]),
                                            "collections": tuple(k.get(
                                                "collections", DEFAULT_KEY_COLLECTIONS))})
                                  for k in raw.get("keys", [])]
                except (OSError, ValueError, TypeError, KeyError) as exc:
                    raise ApiKeyError(f"the key file {self.path} is unreadable ({exc}); restore "
                                    "it from a backup or delete it and create new keys") from exc
                self._stamp = stamp
            return list(self._keys)

    def keys(self) -> list[ApiKey]:
        return self._load()

    def configured(self) -> bool:
        """Were keys ever created here? Then every protected route needs one."""
        return bool(self._load())

    def verify(self, secret: str) -> ApiKey | None:
        """The live key whose secret this is, or None."""
        if not secret.startswith(PREFIX):
            return None
        digest = _digest(secret)
        for key in self._load():
            if secrets.compare_digest(key.hash, digest):
                return key if key.revoked is None else None
        return None

    # ---- writing
    def _save(self, keys: list[ApiKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"version": 1, "keys": [asdict(k) for k in keys]}, f, indent=1)
        os.replace(tmp, self.path)

    def create(self, name: str, scopes: list[str], collections: list[str] | None = None
               ) -> tuple[ApiKey, str]:
        """A new key and its secret (shown once: only its hash is kept). ``collections`` are
        the ones it may use (default: the default collection; '*': all)."""
        if not _NAME.match(name):
            raise ApiKeyError(f"key name '{name}' must be 1-64 letters, digits, '.', '_' or '-'")
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise ApiKeyError(f"unknown or missing scopes {unknown}; choose from {', '.join(SCOPES)}")
        chosen = tuple(dict.fromkeys(collections or DEFAULT_KEY_COLLECTIONS))
        for c in chosen:
            if c != ALL_COLLECTIONS:
                try:
                    checked_collection(c)
                except CollectionNameError as exc:
                    raise ApiKeyError(str(exc)) from None
        keys = self._load()
        if any(k.name == name and k.revoked is None for k in keys):
            raise ApiKeyError(f"a live key named '{name}' exists; revoke it or choose another name")
        secret = PREFIX + secrets.token_urlsafe(KEY_BYTES)
        key = ApiKey(id=secrets.token_hex(4), name=name,
                     scopes=tuple(s for s in SCOPES if s in scopes), hash=_digest(secret),
                     created=round(time.time(), 3),
                     collections=(ALL_COLLECTIONS,) if ALL_COLLECTIONS in chosen else chosen)
        self._save([*keys, key])
        return key, secret

    def revoke(self, name_or_id: str) -> list[ApiKey]:
        """Revoke the live keys with this name or id; returns them (empty: none matched)."""
        keys = self._load()
        hit = [k for k in keys if k.revoked is None and name_or_id in (k.name, k.id)]
        if hit:
            now = round(time.time(), 3)
            self._save([ApiKey(**{**asdict(k), "revoked": now}) if k in hit else k
                        for k in keys])
        return hit
