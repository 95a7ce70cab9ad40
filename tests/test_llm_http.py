"""The HTTP backends against a real fake server on 127.0.0.1 (OpenAI SSE and Ollama NDJSON)."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.llm import (
    LLM,
    BackendUnavailable,
    OllamaLLM,
    OpenAICompatibleLLM,
    build_llm,
)

PIECES = ["Die", " Antwort", " steht", " in", " Quelle", " [1]", "."]
ANSWER = "".join(PIECES)
MESSAGES = [
    {"role": "system", "content": "Answer from the sources."},
    {"role": "user", "content": "Wo steht die Antwort?"},
]
SLOW_S = 2.0  # how long the "slow" model waits; tests use a shorter timeout


class FakeHandler(BaseHTTPRequestHandler):
    """Speaks /v1/chat/completions (JSON or SSE), /v1/models, /api/chat (NDJSON) and /api/tags.

    The model name picks the behaviour: "boom" -> HTTP 500, "slow" -> wait SLOW_S first,
    "trickle" -> long slow stream (to see an early stop end the connection).
    """

    protocol_version = "HTTP/1.1"
    server: FakeServer

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def _send(self, status: int, payload: object, content_type: str = "application/json") -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, lines: Iterator[bytes], content_type: str, delay: float = 0.01) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for line in lines:
                self.wfile.write(line)
                self.wfile.flush()
                self.server.lines_sent += 1
                time.sleep(delay)
        except (BrokenPipeError, ConnectionResetError):
            self.server.client_hung_up = True

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
        elif self.path == "/api/tags":
            self._send(200, {"models": [{"name": "fake-model:latest"}]})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(
            {"path": self.path, "headers": dict(self.headers), "body": body}
        )
        model = body.get("model")
        if model == "boom":
            self._send(500, {"error": {"message": "engine crashed", "type": "server_error"}})
            return
        if model == "slow":
            time.sleep(SLOW_S)
        if model == "missing" and self.path == "/api/chat":
            self._send(404, {"error": f"model '{model}' not found, try pulling it first"})
            return
        pieces = [f"w{i} " for i in range(400)] if model == "trickle" else PIECES
        delay = 0.02 if model == "trickle" else 0.01
        if model == "endless":  # ignores max_tokens and never stops
            self._stream((self._sse_line(f"w{i} ") for i in itertools.count()),
                         "text/event-stream", 0.0005)
            return
        if model == "keepalive":  # only SSE comments, forever: no token ever arrives
            self._stream(iter(lambda: b": ping\n\n", None), "text/event-stream", 0.01)
            return
        if model == "bloat":  # a 200 reply whose body never ends
            self._stream(iter(lambda: b" " * 65536, None), "application/json", 0.0)
            return
        if model == "garbage":
            self._send(200, {"unexpected": "shape"})
            return
        if self.path == "/v1/chat/completions":
            if not body.get("stream"):
                self._send(
                    200,
                    {
                        "id": "c1",
                        "object": "chat.completion",
                        "created": 1,
                        "model": model,
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": ANSWER},
                            }
                        ],
                        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
                    },
                )
                return
            self._stream(self._sse(model, pieces), "text/event-stream", delay)
        elif self.path == "/api/chat":
            self._stream(self._ndjson(model, pieces), "application/x-ndjson", delay)
        else:
            self._send(404, {"error": "not found"})

    @staticmethod
    def _sse_line(content: str) -> bytes:
        data = {"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}]}
        return f"data: {json.dumps(data)}\n\n".encode()

    @staticmethod
    def _sse(model: str, pieces: list[str]) -> Iterator[bytes]:
        def chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
            data = {
                "id": "c1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(data)}\n\n".encode()

        yield chunk({"role": "assistant", "content": ""})
        for piece in pieces:
            yield chunk({"content": piece})
        yield chunk({}, "stop")
        yield b"data: [DONE]\n\n"

    @staticmethod
    def _ndjson(model: str, pieces: list[str]) -> Iterator[bytes]:
        for piece in pieces:
            part = {
                "model": model,
                "created_at": "2025-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": piece},
                "done": False,
            }
            yield (json.dumps(part) + "\n").encode()
        final = {
            "model": model,
            "created_at": "2025-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": 13,
            "eval_count": len(pieces),
        }
        yield (json.dumps(final) + "\n").encode()


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), FakeHandler)
        self.requests: list[dict[str, object]] = []
        self.lines_sent = 0
        self.client_hung_up = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


@pytest.fixture()
def server() -> Iterator[FakeServer]:
    srv = FakeServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture()
def dead_url() -> str:
    """A loopback port that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def openai_llm(url: str, model: str = "fake-model", timeout: float = 10.0) -> OpenAICompatibleLLM:
    llm = build_llm(
        "openai", base_url=url + "/v1", model=model, api_key="sk-test-123", timeout=timeout
    )
    assert isinstance(llm, OpenAICompatibleLLM)
    return llm


def ollama_llm(url: str, model: str = "fake-model", timeout: float = 10.0) -> OllamaLLM:
    llm = build_llm("ollama", base_url=url, model=model, timeout=timeout)
    assert isinstance(llm, OllamaLLM)
    return llm


# --------------------------------------------------------------------------- OpenAI-compatible


def test_openai_plain_chat_returns_text_usage_and_sends_model_and_key(server: FakeServer) -> None:
    llm = openai_llm(server.url)
    assert isinstance(llm, LLM)
    result = llm.chat(MESSAGES, max_tokens=50, temperature=0.0)
    assert result.text == ANSWER
    assert result.backend == "openai"
    assert (result.prompt_tokens, result.completion_tokens) == (11, 7)
    assert result.first_token_ms is None and result.total_ms > 0
    sent = server.requests[-1]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["body"]["model"] == "fake-model"
    assert sent["body"]["max_tokens"] == 50
    assert sent["body"]["temperature"] == 0.0
    assert sent["body"]["messages"] == MESSAGES
    assert sent["headers"]["Authorization"] == "Bearer sk-test-123"


def test_openai_streams_deltas_in_order(server: FakeServer) -> None:
    seen: list[str] = []
    result = openai_llm(server.url).chat(MESSAGES, on_token=seen.append)
    assert seen == PIECES
    assert result.text == ANSWER
    assert result.first_token_ms is not None and result.first_token_ms <= result.total_ms
    assert server.requests[-1]["body"]["stream"] is True


def test_openai_base_url_without_path_gets_v1(server: FakeServer) -> None:
    llm = build_llm("openai", base_url=server.url, model="fake-model")
    assert llm.chat(MESSAGES).text == ANSWER
    assert server.requests[-1]["path"] == "/v1/chat/completions"


def test_openai_early_stop_ends_the_stream(server: FakeServer) -> None:
    seen: list[str] = []

    def take_three(delta: str) -> bool:
        seen.append(delta)
        return len(seen) == 3

    started = time.monotonic()
    result = openai_llm(server.url, model="trickle").chat(MESSAGES, on_token=take_three)
    assert seen == ["w0 ", "w1 ", "w2 "]
    assert result.text == "w0 w1 w2 "
    assert time.monotonic() - started < 3.0  # the full stream would take 8 s
    time.sleep(0.5)
    assert server.client_hung_up, "the connection stayed open after the early stop"
    assert server.lines_sent < 100


def test_a_runaway_stream_is_cut_at_our_own_cap(server: FakeServer) -> None:
    """A backend that ignores max_tokens and streams forever is read only up to
    max_tokens x CHARS_PER_TOKEN_CAP characters, and the connection is closed."""
    from app.llm_base import CHARS_PER_TOKEN_CAP

    got: list[str] = []
    started = time.monotonic()
    result = openai_llm(server.url, model="endless").chat(
        MESSAGES, max_tokens=20, on_token=lambda d: got.append(d) is not None)
    assert len(result.text) <= 20 * CHARS_PER_TOKEN_CAP and result.text.startswith("w0 w1 ")
    assert time.monotonic() - started < 10.0
    time.sleep(0.5)
    assert server.client_hung_up


def test_keepalives_without_tokens_hit_the_deadline(server: FakeServer) -> None:
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="did not answer within"):
        openai_llm(server.url, model="keepalive", timeout=1.0).chat(
            MESSAGES, on_token=lambda d: False)
    assert time.monotonic() - started < 5.0


def test_an_endless_json_reply_is_not_read_to_the_end(server: FakeServer) -> None:
    with pytest.raises(BackendUnavailable):
        openai_llm(server.url, model="bloat", timeout=30.0).chat(MESSAGES)


@pytest.mark.parametrize("stream", [False, True])
def test_a_reply_that_is_not_a_chat_completion_is_a_backend_failure(server: FakeServer,
                                                                     stream: bool) -> None:
    # A 200 with the wrong shape used to pass as an empty answer; it names the problem now.
    on_token = (lambda _d: False) if stream else None
    with pytest.raises(BackendUnavailable) as err:
        openai_llm(server.url, "garbage").chat([{"role": "user", "content": "q"}],
                                               on_token=on_token)
    assert ("server-sent events" if stream else "'choices'") in str(err.value)


def test_openai_dead_port_fails_fast(dead_url: str) -> None:
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="not reachable") as info:
        openai_llm(dead_url).chat(MESSAGES)
    assert time.monotonic() - started < 2.0  # no retry backoff
    assert info.value.backend == "openai"
    assert dead_url in str(info.value)


def test_openai_server_error_becomes_backend_unavailable(server: FakeServer) -> None:
    with pytest.raises(BackendUnavailable, match="HTTP 500") as info:
        openai_llm(server.url, model="boom").chat(MESSAGES)
    assert "engine crashed" in str(info.value)
    assert "Traceback" not in str(info.value)
    assert len(server.requests) == 1  # not retried


def test_openai_streaming_server_error_becomes_backend_unavailable(server: FakeServer) -> None:
    with pytest.raises(BackendUnavailable, match="HTTP 500"):
        openai_llm(server.url, model="boom").chat(MESSAGES, on_token=lambda _: None)


@pytest.mark.parametrize("stream", [False, True])
def test_openai_slow_server_times_out(server: FakeServer, stream: bool) -> None:
    on_token = (lambda _: None) if stream else None
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="did not answer within 0.5 s"):
        openai_llm(server.url, model="slow").chat(MESSAGES, timeout=0.5, on_token=on_token)
    assert time.monotonic() - started < SLOW_S


def test_openai_callback_errors_are_not_disguised(server: FakeServer) -> None:
    def broken(_: str) -> None:
        raise KeyError("caller bug")

    with pytest.raises(KeyError):
        openai_llm(server.url).chat(MESSAGES, on_token=broken)


def test_openai_health(server: FakeServer, dead_url: str) -> None:
    assert openai_llm(server.url).health() == {
        "backend": "openai",
        "model": "fake-model",
        "ok": True,
        "detail": f"reachable at {server.url}/v1",
    }
    wrong = openai_llm(server.url, model="other").health()
    assert wrong["ok"] is False and "fake-model" in str(wrong["detail"])
    down = openai_llm(dead_url).health()
    assert down["ok"] is False and "not reachable" in str(down["detail"])


# --------------------------------------------------------------------------- Ollama native


def test_ollama_chat_and_request_shape(server: FakeServer) -> None:
    result = ollama_llm(server.url).chat(MESSAGES, max_tokens=40, temperature=0.0)
    assert result.text == ANSWER
    assert result.backend == "ollama"
    assert (result.prompt_tokens, result.completion_tokens) == (13, len(PIECES))
    sent = server.requests[-1]
    assert sent["path"] == "/api/chat"
    assert sent["body"]["model"] == "fake-model"
    assert sent["body"]["messages"] == MESSAGES
    assert sent["body"]["options"] == {"temperature": 0.0, "num_predict": 40, "num_ctx": 4096}


def test_ollama_streams_deltas_in_order(server: FakeServer) -> None:
    seen: list[str] = []
    result = ollama_llm(server.url).chat(MESSAGES, on_token=seen.append)
    assert seen == PIECES
    assert result.text == ANSWER
    assert result.first_token_ms is not None


def test_ollama_early_stop(server: FakeServer) -> None:
    seen: list[str] = []
    started = time.monotonic()
    result = ollama_llm(server.url, model="trickle").chat(
        MESSAGES, on_token=lambda d: seen.append(d) or len(seen) >= 2
    )
    assert result.text == "w0 w1 "
    assert time.monotonic() - started < 3.0
    time.sleep(0.5)
    assert server.client_hung_up and server.lines_sent < 100


def test_ollama_api_key_header_is_sent_when_given(server: FakeServer) -> None:
    llm = build_llm("ollama", base_url=server.url, model="fake-model", api_key="tok")
    llm.chat(MESSAGES)
    assert server.requests[-1]["headers"]["Authorization"] == "Bearer tok"


def test_ollama_failures(server: FakeServer, dead_url: str) -> None:
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="not reachable"):
        ollama_llm(dead_url).chat(MESSAGES)
    assert time.monotonic() - started < 2.0
    with pytest.raises(BackendUnavailable, match="HTTP 500.*engine crashed"):
        ollama_llm(server.url, model="boom").chat(MESSAGES)
    with pytest.raises(BackendUnavailable, match="ollama pull missing"):
        ollama_llm(server.url, model="missing").chat(MESSAGES)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="did not answer within 0.5 s"):
        ollama_llm(server.url, model="slow").chat(MESSAGES, timeout=0.5)
    assert time.monotonic() - started < SLOW_S


def test_ollama_health(server: FakeServer, dead_url: str) -> None:
    assert ollama_llm(server.url).health()["ok"] is True
    missing = ollama_llm(server.url, model="nope").health()
    assert missing["ok"] is False and "ollama pull nope" in str(missing["detail"])
    down = ollama_llm(dead_url).health()
    assert down == {
        "backend": "ollama",
        "model": "fake-model",
        "ok": False,
        "detail": down["detail"],
    }
    assert "not reachable" in str(down["detail"])


# --------------------------------------------------------------------------- factory


def test_build_llm_rejects_unknown_backend_and_missing_settings() -> None:
    with pytest.raises(ValueError, match=r"\['local', 'openai', 'ollama'\]"):
        build_llm("gpt")
    with pytest.raises(ValueError, match="base_url"):
        build_llm("openai", model="m")
    with pytest.raises(ValueError, match="model_path"):
        build_llm("local")
