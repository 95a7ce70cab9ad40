"""The HTTP chat backends: OpenAI-compatible servers and Ollama, over one pooled httpx client."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.llm_base import (
    CHARS_PER_TOKEN_CAP,
    BackendUnavailable,
    ChatResult,
    TokenCallback,
    _Collector,
    _error_message_from_body,
    _health,
    _short,
)

logger = logging.getLogger(__name__)

DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434"
HEALTH_TIMEOUT_S = 3.0
# A non-streamed reply larger than this is not read to the end (a chat answer of max_tokens
# tokens is a few KB of JSON).
MAX_REPLY_BYTES = 4 * 1024 * 1024
# What a misbehaving server can cause while we read its answer (json, dict access, httpx).
_PROTOCOL_ERRORS = (httpx.HTTPError, ValueError, TypeError, AttributeError, KeyError, IndexError)


def _status_hint(status: int) -> str:
    if status in (401, 403):
        return "the server rejected the credentials: check the API key"
    if status == 404:
        return "check the base URL and that the model name is served there"
    if status == 429:
        return "the server is rate-limiting or overloaded: retry later"
    if status >= 500:
        return "the server failed internally: check its log"
    return "the server rejected the request"


def _http_error(backend: str, url: str, exc: Exception, timeout: float) -> BackendUnavailable:
    """Turn an httpx failure into one actionable BackendUnavailable (no stack trace in it)."""
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        try:
            detail = _error_message_from_body(exc.response.text)
        except httpx.ResponseNotRead:
            detail = "no details"
        msg = (
            f"{backend} backend at {url} answered HTTP {status} ({detail}); {_status_hint(status)}"
        )
    elif isinstance(exc, httpx.TimeoutException):
        msg = (
            f"{backend} backend at {url} did not answer within {timeout:g} s; the server may be "
            "busy or still loading the model: check it, or raise the timeout"
        )
    elif isinstance(exc, (httpx.ConnectError, httpx.RemoteProtocolError, httpx.NetworkError)):
        msg = (
            f"{backend} backend at {url} is not reachable ({_short(str(exc), 120) or 'no answer'}); "
            "check that the server is running and that host and port are right"
        )
    elif isinstance(exc, (ValueError, TypeError, AttributeError)):  # not the expected JSON
        msg = (
            f"{backend} backend at {url} sent an answer outside its protocol "
            f"({_short(str(exc), 120)}); check that the URL points at the right kind of server"
        )
    else:
        msg = f"{backend} backend at {url} failed: {type(exc).__name__}: {_short(str(exc), 200)}"
    return BackendUnavailable(msg, backend=backend)


class _HttpBackend:
    """Shared plumbing of the HTTP backends: one pooled httpx client, errors, deadlines.

    Both speak httpx directly: closing the response is what stops a remote generation after an
    early stop, and that has to happen at once, not whenever a garbage collection runs.
    """

    name = "http"

    def __init__(self, base_url: str, model: str, *, api_key: str | None, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = timeout
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    @contextmanager
    def _post_stream(
        self, path: str, body: dict[str, Any], limit: float
    ) -> Iterator[httpx.Response]:
        with self._client.stream("POST", path, json=body, timeout=limit) as response:
            if response.status_code >= 400:
                response.read()
                response.raise_for_status()
            yield response  # leaving the block closes the connection, ending the generation

    def _post_json(self, path: str, body: dict[str, Any], limit: float) -> dict[str, Any]:
        """The JSON reply, read within ``limit`` seconds in all and at most MAX_REPLY_BYTES."""
        data = self._read_json("POST", path, body, limit)
        if not isinstance(data, dict):
            raise TypeError("expected a JSON object")
        return data

    def _get_json(self, path: str) -> Any:
        return self._read_json("GET", path, None, HEALTH_TIMEOUT_S)

    def _read_json(self, method: str, path: str, body: dict[str, Any] | None,
                   limit: float) -> Any:
        """A JSON reply read within ``limit`` seconds in all (not per read: a server that
        drips bytes forever is cut off too) and at most MAX_REPLY_BYTES."""
        started = time.monotonic()
        raw = bytearray()
        with self._client.stream(method, path, json=body, timeout=limit) as response:
            if response.status_code >= 400:
                response.read()
                response.raise_for_status()
            for piece in response.iter_bytes():
                raw += piece
                if len(raw) > MAX_REPLY_BYTES:
                    raise ValueError(f"the reply is larger than {MAX_REPLY_BYTES} bytes")
                if time.monotonic() - started > limit:
                    raise httpx.ReadTimeout("the answer took longer than the time limit")
        return json.loads(bytes(raw))

    def _failure(self, exc: Exception, limit: float) -> BackendUnavailable:
        logger.debug("%s backend failure", self.name, exc_info=exc)
        return _http_error(self.name, self.base_url, exc, limit)

    @staticmethod
    def _check_deadline(collector: _Collector, limit: float) -> None:
        if collector.elapsed_ms() > limit * 1000.0:
            raise httpx.ReadTimeout("the answer took longer than the time limit")

    def close(self) -> None:
        self._client.close()


def _openai_base(base_url: str) -> str:
    """Servers mount the API under /v1; add it when the URL names no path at all."""
    base = base_url.rstrip("/")
    if urlsplit(base).path in ("", "/"):
        base += "/v1"
    return base


class OpenAICompatibleLLM(_HttpBackend):
    """Any server speaking /v1/chat/completions: vLLM, llama.cpp server, LM Studio, Ollama /v1, OpenAI.

    Without on_token one JSON answer is requested (it carries the token usage); with on_token
    the answer is streamed as server-sent events.
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        super().__init__(_openai_base(base_url), model, api_key=api_key, timeout=timeout)

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
        limit = self.timeout if timeout is None else timeout
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": on_token is not None,
        }
        if grammar:  # llama.cpp's server reads it; other OpenAI-compatible servers ignore it
            body["grammar"] = grammar
        collector = _Collector(on_token, max_chars=max_tokens * CHARS_PER_TOKEN_CAP)
        usage: dict[str, Any] = {}
        try:
            if on_token is None:
                data = self._post_json("/chat/completions", body, limit)
                choices = data.get("choices")
                if not isinstance(choices, list) or not choices:
                    raise BackendUnavailable(
                        f"openai backend at {self.base_url} sent a reply without 'choices': "
                        "not an OpenAI chat completion", backend=self.name)
                message = choices[0].get("message") or {}
                collector.add(message.get("content") or "")
                usage = data.get("usage") or {}
            else:
                events = 0
                with self._post_stream("/chat/completions", body, limit) as response:
                    for line in response.iter_lines():
                        self._check_deadline(collector, limit)  # also for empty keep-alives
                        if not line.startswith("data:"):
                            continue  # blank separators, comments, "event:" lines
                        events += 1
                        payload = line[5:].strip()
                        if payload == "[DONE]":
                            break
                        chunk = json.loads(payload)
                        if "error" in chunk:
                            raise BackendUnavailable(
                                f"openai backend at {self.base_url} reported: "
                                f"{_error_message_from_body(payload)}",
                                backend=self.name,
                            )
                        usage = chunk.get("usage") or usage
                        choices = chunk.get("choices") or [{}]
                        if collector.add((choices[0].get("delta") or {}).get("content") or ""):
                            break
                if not events:
                    raise BackendUnavailable(
                        f"openai backend at {self.base_url} sent no server-sent events "
                        f"(content type {response.headers.get('content-type', 'none')!r}): "
                        "not an OpenAI chat completion stream", backend=self.name)
        except _PROTOCOL_ERRORS as exc:
            if collector.callback_failed:
                raise
            raise self._failure(exc, limit) from None
        return ChatResult(
            text=collector.text,
            backend=self.name,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            first_token_ms=collector.first_token_ms if on_token is not None else None,
            total_ms=collector.elapsed_ms(),
        )

    def health(self) -> dict[str, object]:
        try:
            listing = self._get_json("/models")
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 404:
                return _health(self.name, self.model, True, "reachable (no /models listing)")
            return _health(self.name, self.model, False, str(self._failure(exc, HEALTH_TIMEOUT_S)))
        except Exception as exc:  # noqa: BLE001 - health() must never raise
            return _health(self.name, self.model, False, str(self._failure(exc, HEALTH_TIMEOUT_S)))
        try:
            served = [str(m.get("id")) for m in listing["data"]]
        except (AttributeError, TypeError, KeyError):
            return _health(self.name, self.model, False,
                           f"{self.base_url}/models did not answer with an OpenAI model list")
        if served and self.model not in served:
            return _health(
                self.name,
                self.model,
                False,
                f"model {self.model!r} is not served here; available: {', '.join(served[:10])}",
            )
        return _health(self.name, self.model, True, f"reachable at {self.base_url}")


class OllamaLLM(_HttpBackend):
    """Ollama's native /api/chat, streamed as NDJSON (one JSON object per line)."""

    name = "ollama"

    def __init__(
        self,
        model: str,
        *,
        base_url: str = DEFAULT_OLLAMA_URL,
        timeout: float = 60.0,
        n_ctx: int = 4096,
        api_key: str | None = None,
    ) -> None:
        super().__init__(base_url, model, api_key=api_key, timeout=timeout)
        self.n_ctx = n_ctx

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
        limit = self.timeout if timeout is None else timeout
        body = {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "options": {
                "temperature": temperature,
                "num_predict": max_tokens,
                "num_ctx": self.n_ctx,
            },
        }
        collector = _Collector(on_token, max_chars=max_tokens * CHARS_PER_TOKEN_CAP)
        final: dict[str, Any] = {}
        try:
            with self._post_stream("/api/chat", body, limit) as response:
                for line in response.iter_lines():
                    self._check_deadline(collector, limit)
                    if not line.strip():
                        continue
                    part = json.loads(line)
                    if "error" in part:
                        raise BackendUnavailable(
                            f"ollama backend at {self.base_url} reported: {_short(str(part['error']))}",
                            backend=self.name,
                        )
                    if collector.add((part.get("message") or {}).get("content") or ""):
                        break
                    if part.get("done"):
                        final = part
                        break
        except _PROTOCOL_ERRORS as exc:
            if collector.callback_failed:
                raise
            err = self._failure(exc, limit)
            if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code == 404:
                err = BackendUnavailable(
                    f"{err}; if the model is missing: ollama pull {self.model}", backend=self.name
                )
            raise err from None
        return ChatResult(
            text=collector.text,
            backend=self.name,
            prompt_tokens=final.get("prompt_eval_count"),
            completion_tokens=final.get("eval_count"),
            first_token_ms=collector.first_token_ms,
            total_ms=collector.elapsed_ms(),
        )

    def health(self) -> dict[str, object]:
        try:
            names = [str(m.get("name", "")) for m in self._get_json("/api/tags").get("models", [])]
        except Exception as exc:  # noqa: BLE001 - health() must never raise
            return _health(self.name, self.model, False, str(self._failure(exc, HEALTH_TIMEOUT_S)))
        if not {self.model, f"{self.model}:latest"}.intersection(names):
            return _health(
                self.name,
                self.model,
                False,
                f"model {self.model!r} is not pulled; run: ollama pull {self.model}",
            )
        return _health(self.name, self.model, True, f"reachable at {self.base_url}")
