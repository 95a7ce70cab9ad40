"""The LLM seam every backend implements: protocol, errors, ChatResult and shared helpers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

TokenCallback = Callable[[str], "bool | None"]


class BackendUnavailable(Exception):
    """The generator could not answer: down, refused, timed out or rejected the request."""

    def __init__(self, message: str, *, backend: str = "") -> None:
        super().__init__(message)
        self.backend = backend


class ModelFileError(Exception):
    """A model file is missing, is not a GGUF, or has the wrong size or sha256."""


@dataclass(frozen=True)
class ChatResult:
    text: str
    backend: str
    prompt_tokens: int | None
    completion_tokens: int | None
    first_token_ms: float | None
    total_ms: float


@runtime_checkable
class LLM(Protocol):
    name: str
    model: str

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int = 384,
        temperature: float = 0.0,
        on_token: TokenCallback | None = None,
        timeout: float | None = None,
        grammar: str | None = None,
    ) -> ChatResult:
        """Answer a chat; stream deltas to on_token (True stops early). Raises BackendUnavailable.

        ``grammar`` (GBNF) constrains the output where the backend supports it (llama.cpp, in
        process or as a server); other backends ignore it, so callers check the output anyway.
        """
        ...

    def health(self) -> dict[str, object]:
        """Cheap status: {"backend", "model", "ok", "detail"}; never raises."""
        ...


# Characters a reply may have per requested token before we stop reading it, whatever the
# backend does with max_tokens. Tokens of the vocabularies in use average 3-5 characters of
# German or English text; 16 leaves room for any of them and still bounds a runaway stream.
CHARS_PER_TOKEN_CAP = 16


class _Collector:
    """Joins streamed deltas, times the first one and forwards them to the caller's callback."""

    def __init__(self, on_token: TokenCallback | None, max_chars: int | None = None) -> None:
        self._on_token = on_token
        self.max_chars = max_chars
        self.chars = 0
        self.capped = False  # the backend wrote past max_chars: the rest was not read
        self._parts: list[str] = []
        self.started = time.monotonic()
        self.first_token_ms: float | None = None
        self.stopped = False
        self.callback_failed = False  # the caller's on_token raised: not a backend failure

    def add(self, delta: str) -> bool:
        """Record one delta; return True when the caller asked to stop."""
        if not delta:
            return False
        if self.max_chars is not None and self.chars + len(delta) > self.max_chars:
            delta = delta[:max(0, self.max_chars - self.chars)]
            self.capped = True
        if self.first_token_ms is None:
            self.first_token_ms = self.elapsed_ms()
        self.chars += len(delta)
        self._parts.append(delta)
        if self._on_token is not None:
            try:
                wants_stop = self._on_token(delta)
            except BaseException:
                self.callback_failed = True
                raise
            self.stopped = wants_stop is True
        return self.stopped or self.capped

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000.0

    @property
    def text(self) -> str:
        return "".join(self._parts)


def _health(backend: str, model: str, ok: bool, detail: str) -> dict[str, object]:
    return {"backend": backend, "model": model, "ok": ok, "detail": detail}


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _error_message_from_body(body: str) -> str:
    """Pull the human part out of an error body ({"error": {"message": ...}} or {"error": "..."})."""
    try:
        data = json.loads(body)
    except ValueError:
        return _short(body) or "no details"
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            return _short(str(err.get("message") or err))
        return _short(str(err))
    return _short(body)
