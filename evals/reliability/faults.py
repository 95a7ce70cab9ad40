"""Backend faults: each one injected into the model server, and what beleg did under it.

In the default configuration (answer risk 2 %) no answer reaches the model: at that risk the
calibration has no answer threshold, so every answer is quoted candidates or a refusal, and a
broken backend cannot change an answer. The stage therefore checks three things per fault:
the server's /api/health (answers, in bounded time, and says degraded), a question over
/api/ask (answers in bounded time), and beleg's own OpenAI-compatible client
(app/llm_http.py) streaming a reply from the faulty server, the call every generated answer
makes: it must end in bounded time with a typed error or a capped text, never hold a core.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx

from app.llm_base import BackendUnavailable
from app.llm_http import OpenAICompatibleLLM
from evals.reliability.fault_llm import FAULTS, FaultServer
from evals.reliability.server import BelegServer, proc_cpu_s

logger = logging.getLogger(__name__)
T = TypeVar("T")

QUESTION = "Wie viele nordkoreanische Soldaten kämpfen im Ukraine-Krieg?"
# The model timeout the battery gives beleg, and the slack allowed on top of it for retrieval,
# the fallback and a loaded machine before a reply counts as "held".
LLM_TIMEOUT_S = 8.0
SLACK_S = 20.0
# After the reply, the server should go quiet: CPU it burns in this window is work a fault
# left running (the runaway stream of the first probe held a core for 11 minutes). An idle
# server measured 0.36-0.43 s per 5 s here (uvicorn and Gradio's housekeeping).
QUIET_WINDOW_S = 5.0
QUIET_CPU_S = 1.0
CLIENT_MAX_TOKENS = 64


@dataclass(frozen=True)
class FaultResult:
    fault: str
    health: str          # the status /api/health reported
    health_s: float
    ask_status: int
    ask_s: float
    client: str          # "text (N chars)" or "BackendUnavailable: message"
    client_s: float
    cpu_after_s: float
    recovered: bool      # health "ok" once the model behaves again
    survived: bool
    note: str


def fault_env() -> dict[str, str]:
    """Settings that point beleg at the fault server (its URL is filled in by the caller)."""
    return {"BELEG_LLM": "openai", "BELEG_LLM_MODEL": "fault",
            "BELEG_LLM_TIMEOUT": str(LLM_TIMEOUT_S)}


def _timed(call: Callable[[], T]) -> tuple[T, float]:
    t0 = time.monotonic()
    value = call()
    return value, time.monotonic() - t0


def _client_call(url: str) -> tuple[str, bool]:
    """One streamed chat through beleg's own client; (what came back, ended properly)."""
    llm = OpenAICompatibleLLM(url, "fault", timeout=LLM_TIMEOUT_S)
    pieces: list[str] = []
    try:
        result = llm.chat([{"role": "user", "content": QUESTION}],
                          max_tokens=CLIENT_MAX_TOKENS, on_token=lambda d: bool(pieces.append(d)))
    except BackendUnavailable as exc:
        return f"BackendUnavailable: {exc}", True
    except Exception as exc:  # anything untyped is a finding
        return f"untyped {type(exc).__name__}: {exc}", False
    return f"text ({len(getattr(result, 'text', '') or ''.join(pieces))} chars)", True


def run_faults(server: BelegServer, llm: FaultServer,
               faults: tuple[str, ...] = FAULTS[1:]) -> list[FaultResult]:
    """Injects each fault, checks health, a question and the client, the quiet after them, and
    that health is "ok" again once the model behaves."""
    results = []
    bound = LLM_TIMEOUT_S + SLACK_S
    with server.client(timeout=bound + 60) as http:
        for fault in faults:
            llm.set_fault(fault)
            health, health_s = _timed(lambda: http.get("/api/health"))
            ask, ask_s = _timed(lambda: http.post("/api/ask", json={"question": QUESTION}))
            (client, typed), client_s = _timed(lambda: _client_call(llm.url))
            cpu0, own0 = server.cpu_s(), proc_cpu_s_self()
            time.sleep(QUIET_WINDOW_S)
            cpu_after = server.cpu_s() - cpu0
            own_after = proc_cpu_s_self() - own0
            llm.set_fault("ok")
            try:
                recovered = http.get("/api/health").json().get("status") == "ok"
            except httpx.HTTPError:
                recovered = False
            status = health.json().get("status") if health.status_code < 500 else "error"
            problems = []
            if status != "degraded":
                problems.append(f"health said {status!r}")
            if health_s > bound or ask_s > bound or client_s > bound:
                problems.append(f"took {max(health_s, ask_s, client_s):.1f} s")
            if ask.status_code != 200:
                problems.append(f"ask gave {ask.status_code}")
            if not typed:
                problems.append(client)
            if cpu_after > QUIET_CPU_S or own_after > QUIET_CPU_S:
                problems.append(f"{max(cpu_after, own_after):.1f} s CPU after the reply")
            if not recovered:
                problems.append("health did not recover")
            if not server.alive():
                problems.append("server died")
            results.append(FaultResult(fault, str(status), health_s, ask.status_code, ask_s,
                                       client[:160], client_s, cpu_after, recovered,
                                       not problems, "; ".join(problems)))
            logger.info("fault %-20s survived=%s %s", fault, not problems, "; ".join(problems))
    return results


def proc_cpu_s_self() -> float:
    """CPU of this process: a client thread still reading an endless stream would show here."""
    return proc_cpu_s(os.getpid())
