"""An OpenAI-compatible model server that misbehaves on purpose, one fault at a time."""
from __future__ import annotations

import itertools
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

logger = logging.getLogger(__name__)

# The faults the battery injects; "ok" is a well-behaved reply to check recovery after each.
FAULTS = ("ok", "down", "slow", "hang", "hang_after_headers", "garbage", "error_500",
          "rate_limited", "wrong_shape", "endless_stream", "slow_drip")
# A reply the answer layer can check: it quotes nothing, so verification decides its fate.
REPLY = "Dazu steht in den Quellen eine Angabe [1]."
# How long "slow" waits before answering and "slow_drip" waits between tokens: both must exceed
# the client timeout the battery gives beleg (BELEG_LLM_TIMEOUT) for the fault to bite.
SLOW_S = 30.0
DRIP_S = 1.0


def _chunk(content: str, finish: str | None = None) -> bytes:
    delta = {"content": content} if content else {}
    data = {"id": "f1", "object": "chat.completion.chunk", "created": 1, "model": "fault",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(data)}\n\n".encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, lines: Iterator[bytes], delay: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for line in lines:
                if self.server.closing.is_set():
                    return
                self.wfile.write(line)
                self.wfile.flush()
                self.server.count("lines")
                if delay:
                    time.sleep(delay)
        except (BrokenPipeError, ConnectionResetError):
            self.server.count("hung_up")

    def _wait(self, seconds: float) -> None:
        self.server.closing.wait(seconds)

    def do_GET(self) -> None:
        """The model listing misbehaves like the chat route: a broken server is broken for
        health checks too."""
        self.server.count("requests")
        if self._misbehave(self.server.fault):
            return
        if self.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": "fault", "object": "model"}]})
        else:
            self._json(404, {"error": "not found"})

    def _misbehave(self, fault: str) -> bool:
        """Acts out ``fault``; True when the request has been dealt with (badly)."""
        if fault == "down":  # a connection kept alive from before: drop it unanswered
            self.close_connection = True
            return True
        if fault == "slow":
            self._wait(SLOW_S)
            return False
        elif fault == "hang":
            self._wait(3600)
            return True
        elif fault == "hang_after_headers":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.flush()
            self._wait(3600)
            self.close_connection = True
            return True
        elif fault == "garbage":
            data = b"\x00\xffnot json at all <html>" * 20
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return True
        elif fault == "error_500":
            self._json(500, {"error": {"message": "engine crashed", "type": "server_error"}})
            return True
        elif fault == "rate_limited":
            self._json(429, {"error": {"message": "slow down", "type": "rate_limit"}},
                       {"Retry-After": "30"})
            return True
        elif fault == "wrong_shape":
            self._json(200, {"unexpected": "shape", "choices": "none"})
            return True
        elif fault == "endless_stream":  # ignores max_tokens and never stops
            self._stream((_chunk(f"w{i} ") for i in itertools.count()), 0.0005)
            return True
        elif fault == "slow_drip":
            self._stream((_chunk(f"w{i} ") for i in itertools.count()), DRIP_S)
            return True
        return False

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.count("requests")
        if self._misbehave(self.server.fault):
            return
        stream = bool(body.get("stream"))
        if stream:
            words = [w + " " for w in REPLY.split()]
            self._stream(iter([*(_chunk(w) for w in words), _chunk("", "stop"),
                               b"data: [DONE]\n\n"]), 0.0)
        else:
            self._json(200, {"id": "f1", "object": "chat.completion", "created": 1,
                             "model": "fault", "usage": {"prompt_tokens": 1,
                                                         "completion_tokens": 1,
                                                         "total_tokens": 2},
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": REPLY}}]})


class FaultServer(ThreadingHTTPServer):
    """Serves on 127.0.0.1:``port``; set ``fault`` to change how the next request is treated.
    ``down`` closes the listening socket (connections are refused) until another fault is set."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.port = port
        self._fault = "ok"
        self.closing = threading.Event()
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def fault(self) -> str:
        return self._fault

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that gave up mid-reply is the point of most faults, not an error."""
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)

    def count(self, key: str) -> None:
        with self._lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    def begin(self) -> FaultServer:
        self._thread = threading.Thread(target=self.serve_forever, name="fault-llm", daemon=True)
        self._thread.start()
        return self

    def set_fault(self, fault: str) -> None:
        """Switches the fault; hanging handlers from the previous fault are released first."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        self.closing.set()
        time.sleep(0.2)
        self.closing.clear()
        if fault == "down" and self._fault != "down":
            self.shutdown()
            self.socket.close()
        elif fault != "down" and self._fault == "down":
            self.socket = socket.socket(self.address_family, self.socket_type)
            self.server_bind()
            self.server_activate()
            self.begin()
        self._fault = fault
        logger.info("fault LLM now: %s", fault)

    def end(self) -> None:
        self.closing.set()
        if self._fault != "down":
            self.shutdown()
        self.server_close()
