"""LocalLLM: a GGUF model run in-process by xllamacpp (llama.cpp's server engine)."""

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
from pathlib import Path
from typing import Any

from app.llm_base import (
    BackendUnavailable,
    ChatResult,
    TokenCallback,
    _Collector,
    _error_message_from_body,
    _health,
)

logger = logging.getLogger(__name__)


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
        from app.model_files import verify_gguf  # late import: app.model_files imports app.llm

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
        grammar: str | None = None,
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
        if grammar:
            request["grammar"] = grammar
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
