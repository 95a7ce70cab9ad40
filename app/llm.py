"""Chat generators behind one seam: in-process llama.cpp, OpenAI-compatible HTTP servers, Ollama."""

from __future__ import annotations

import json
import logging
import queue
import secrets
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx

logger = logging.getLogger(__name__)

BACKENDS = ("local", "openai", "ollama")
DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434"
HEALTH_TIMEOUT_S = 3.0
# What a misbehaving server can cause while we read its answer (json, dict access, httpx).
_PROTOCOL_ERRORS = (httpx.HTTPError, ValueError, TypeError, AttributeError, KeyError, IndexError)

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
    ) -> ChatResult:
        """Answer a chat; stream deltas to on_token (True stops early). Raises BackendUnavailable."""
        ...

    def health(self) -> dict[str, object]:
        """Cheap status: {"backend", "model", "ok", "detail"}; never raises."""
        ...


class _Collector:
    """Joins streamed deltas, times the first one and forwards them to the caller's callback."""

    def __init__(self, on_token: TokenCallback | None) -> None:
        self._on_token = on_token
        self._parts: list[str] = []
        self.started = time.monotonic()
        self.first_token_ms: float | None = None
        self.stopped = False
        self.callback_failed = False  # the caller's on_token raised: not a backend failure

    def add(self, delta: str) -> bool:
        """Record one delta; return True when the caller asked to stop."""
        if not delta:
            return False
        if self.first_token_ms is None:
            self.first_token_ms = self.elapsed_ms()
        self._parts.append(delta)
        if self._on_token is not None:
            try:
                wants_stop = self._on_token(delta)
            except BaseException:
                self.callback_failed = True
                raise
            self.stopped = wants_stop is True
        return self.stopped

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


# --------------------------------------------------------------------------- local (xllamacpp)


class LocalLLM:
    """A GGUF model run in-process by xllamacpp (llama.cpp's server engine).

    The model loads once per instance, on the first chat or on warm_up(). The engine is
    thread-safe: concurrent chats queue for its slots (``parallel`` of them, continuous
    batching when more than one). Every request is streamed internally so that a timeout
    or an early stop cancels generation at the next token.

    xllamacpp always starts llama.cpp's HTTP listener as well (there is no switch to turn it
    off; CommonParams.hostnames/port only choose where it binds). We bind it to a Unix socket
    inside a private 0700 temp directory and set a random API key, so no TCP port is opened
    and other local users cannot reach the model through it.
    """

    name = "local"

    def __init__(
        self,
        model_path: Path,
        *,
        threads: int = 2,
        n_ctx: int = 4096,
        timeout: float = 60.0,
        parallel: int = 1,
    ) -> None:
        from app.model_files import verify_gguf  # late import: model_files imports this module

        self.model_path = Path(model_path)
        verify_gguf(self.model_path, None, None)
        self.model = self.model_path.name
        self.threads = threads
        self.n_ctx = n_ctx
        self.timeout = timeout
        self.parallel = max(1, parallel)
        self.load_seconds: float | None = None
        self._server: Any = None
        self._load_error: str | None = None
        self._lock = threading.Lock()
        self._socket_dir: Path | None = None

    def warm_up(self) -> float:
        """Load the model now (instead of on the first chat); return the load time in seconds."""
        self._ensure_server()
        assert self.load_seconds is not None
        return self.load_seconds

    def _ensure_server(self) -> Any:
        with self._lock:
            if self._server is not None:
                return self._server
            import xllamacpp

            socket_dir = Path(tempfile.mkdtemp(prefix="beleg-llama-"))  # mode 0700
            params = xllamacpp.CommonParams()
            params.model.path = str(self.model_path)
            params.n_ctx = self.n_ctx
            params.cpuparams.n_threads = self.threads
            params.cpuparams_batch.n_threads = self.threads
            params.n_parallel = self.parallel
            params.kv_unified = self.parallel > 1  # every slot may use the whole n_ctx
            params.hostnames = [str(socket_dir / "llama.sock")]
            params.api_keys = [secrets.token_urlsafe(32)]
            params.ui = False
            params.verbosity = 0  # llama.cpp logs to stdout otherwise
            started = time.monotonic()
            try:
                server = xllamacpp.Server(params)
            except (RuntimeError, ValueError) as exc:  # "Failed to init server, ..."
                shutil.rmtree(socket_dir, ignore_errors=True)
                self._load_error = str(exc)
                raise BackendUnavailable(
                    f"local backend could not load {self.model_path} ({exc}); the file may be "
                    "truncated or corrupt (check its size and sha256), or there is not enough "
                    f"free RAM for the model plus n_ctx={self.n_ctx}",
                    backend=self.name,
                ) from None
            self.load_seconds = time.monotonic() - started
            self._load_error = None
            self._server = server
            self._socket_dir = socket_dir
            weakref.finalize(self, shutil.rmtree, socket_dir, True)
            logger.info(
                "loaded %s in %.1f s (threads=%d, n_ctx=%d, slots=%d, listener %s)",
                self.model,
                self.load_seconds,
                self.threads,
                self.n_ctx,
                self.parallel,
                server.listening_address,
            )
            return server

    def close(self) -> None:
        """Free the model. Call only when no chat is running."""
        with self._lock:
            self._server = None  # the C++ destructor stops the engine's threads
            if self._socket_dir is not None:
                shutil.rmtree(self._socket_dir, ignore_errors=True)
                self._socket_dir = None

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int = 384,
        temperature: float = 0.0,
        on_token: TokenCallback | None = None,
        timeout: float | None = None,
    ) -> ChatResult:
        server = self._ensure_server()
        limit = self.timeout if timeout is None else timeout
        request = {
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        cancel = threading.Event()

        def on_chunk(chunk: dict[str, Any]) -> bool:
            # Runs on the worker thread inside llama.cpp's loop; returning True cancels the task.
            if cancel.is_set():
                return True
            events.put(("chunk", chunk))
            return False

        def work() -> None:
            try:
                server.handle_chat_completions(request, on_chunk)
            except Exception as exc:  # noqa: BLE001 - handed to the caller's thread
                events.put(("error", exc))
            finally:
                events.put(("done", None))

        collector = _Collector(on_token)
        worker = threading.Thread(target=work, name="beleg-local-chat", daemon=True)
        worker.start()
        usage: dict[str, Any] = {}
        deadline = collector.started + limit
        try:
            while True:
                try:
                    kind, payload = events.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    raise BackendUnavailable(
                        f"local backend ({self.model}) gave no complete answer within {limit:g} s; "
                        "the engine may be busy with other requests or the prompt too long for "
                        f"{self.threads} threads: raise the timeout or shorten the prompt",
                        backend=self.name,
                    ) from None
                if kind == "done":
                    break
                if kind == "error":
                    raise BackendUnavailable(
                        f"local backend rejected the request: {payload}", backend=self.name
                    )
                if "error" in payload:
                    detail = _error_message_from_body(json.dumps(payload))
                    raise BackendUnavailable(
                        f"local backend rejected the request: {detail}", backend=self.name
                    )
                if payload.get("usage"):
                    usage = payload["usage"]
                    logger.debug("local timings: %s", payload.get("timings"))
                for choice in payload.get("choices") or []:
                    if collector.add((choice.get("delta") or {}).get("content") or ""):
                        break
                if collector.stopped:
                    break
        finally:
            cancel.set()  # no-op after a normal end; stops the engine after a stop, timeout or error
        return ChatResult(
            text=collector.text,
            backend=self.name,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            first_token_ms=collector.first_token_ms,
            total_ms=collector.elapsed_ms(),
        )

    def health(self) -> dict[str, object]:
        if self._server is not None:
            return _health(self.name, self.model, True, f"loaded in {self.load_seconds:.1f} s")
        if self._load_error is not None:
            return _health(self.name, self.model, False, f"load failed: {self._load_error}")
        try:
            size = self.model_path.stat().st_size
        except OSError as exc:
            return _health(self.name, self.model, False, f"model file unreadable: {exc}")
        return _health(
            self.name,
            self.model,
            True,
            f"not loaded yet ({size / 1e6:.0f} MB file; loads on first use)",
        )


# --------------------------------------------------------------------------- HTTP backends


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
        response = self._client.post(path, json=body, timeout=limit)
        response.raise_for_status()
        data = response.json()
        if not isinstance(data, dict):
            raise TypeError("expected a JSON object")
        return data

    def _get_json(self, path: str) -> Any:
        response = self._client.get(path, timeout=HEALTH_TIMEOUT_S)
        response.raise_for_status()
        return response.json()

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
    ) -> ChatResult:
        limit = self.timeout if timeout is None else timeout
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": on_token is not None,
        }
        collector = _Collector(on_token)
        usage: dict[str, Any] = {}
        try:
            if on_token is None:
                data = self._post_json("/chat/completions", body, limit)
                message = (data.get("choices") or [{}])[0].get("message") or {}
                collector.add(message.get("content") or "")
                usage = data.get("usage") or {}
            else:
                with self._post_stream("/chat/completions", body, limit) as response:
                    for line in response.iter_lines():
                        if not line.startswith("data:"):
                            continue  # blank separators, comments, "event:" lines
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
                        self._check_deadline(collector, limit)
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
            served = [str(m.get("id")) for m in listing.get("data", [])]
        except (AttributeError, TypeError):
            served = []
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
        collector = _Collector(on_token)
        final: dict[str, Any] = {}
        try:
            with self._post_stream("/api/chat", body, limit) as response:
                for line in response.iter_lines():
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
                    self._check_deadline(collector, limit)
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


# --------------------------------------------------------------------------- factory


def build_llm(
    backend: str,
    *,
    model_path: Path | None = None,
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    timeout: float = 60.0,
    threads: int = 2,
    n_ctx: int = 4096,
) -> LLM:
    """Make the generator for one backend name ("local", "openai" or "ollama")."""
    match backend:
        case "local":
            if model_path is None:
                raise ValueError(
                    "the local backend needs model_path (a GGUF file; "
                    "app.model_files.ensure_default_model() provides the default one)"
                )
            return LocalLLM(Path(model_path), threads=threads, n_ctx=n_ctx, timeout=timeout)
        case "openai":
            if not base_url or not model:
                raise ValueError(
                    "the openai backend needs base_url (e.g. http://127.0.0.1:8000/v1) and model"
                )
            return OpenAICompatibleLLM(base_url, model, api_key=api_key, timeout=timeout)
        case "ollama":
            if not model:
                raise ValueError("the ollama backend needs model (e.g. qwen2.5:1.5b-instruct)")
            return OllamaLLM(
                model,
                base_url=base_url or DEFAULT_OLLAMA_URL,
                timeout=timeout,
                n_ctx=n_ctx,
                api_key=api_key,
            )
        case _:
            raise ValueError(f"unknown LLM backend {backend!r}; valid choices: {list(BACKENDS)}")
