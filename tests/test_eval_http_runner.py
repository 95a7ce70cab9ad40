"""run_http against a real local server with canned answers, failures and a slow request."""
from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from evals.cli import main
from evals.metrics import aggregate
from evals.runners import DEFAULT_CORPUS, load_document_texts, run_http, run_in_process

SOURCE = "000_218c33ea26fbfb53.txt"
TEXTS = load_document_texts(DEFAULT_CORPUS)
DOC = TEXTS[SOURCE]
TROOPS = "rund 15'000 Soldaten, die im Ukraine-Krieg kämpfen"
TOKEN = "test-token"
TIMEOUT = 1.0


def _answer(answer: str, quote: str | None, refused: bool = False) -> dict[str, Any]:
    citations = []
    if quote is not None:
        start = DOC.index(quote)
        citations.append({"n": 1, "source": SOURCE, "start": start, "end": start + len(quote),
                          "quote": quote})
    return {"answer": answer, "refused": refused, "mode": "fake", "citations": citations,
            "language": "en", "unverified": [], "retrieval_ms": 1.0, "first_token_ms": 2.0,
            "total_ms": 3.0}


CANNED: dict[str, Any] = {
    "good": _answer("About 15,000 soldiers [1].", TROOPS),
    "wrong": _answer("About 20,000 soldiers [1].", TROOPS),
    "refuse": _answer("The documents do not say.", None, refused=True),
    "broken": {"answer": "no refused flag", "citations": []},
}


def _row(id_: str, answerable: bool = True) -> dict[str, Any]:
    return {"id": id_, "user_input": id_, "reference": "About 15,000.",
            "expected_figures": ["15'000"] if answerable else [],
            "reference_quote": TROOPS if answerable else "", "language": "en",
            "answerable": answerable, "tags": [],
            "history": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hi"}]}


QUESTIONS = [_row("good"), _row("wrong"), _row("refuse", answerable=False), _row("fail500"),
             _row("slow"), _row("broken")]


def _fake_app(seen: list[dict[str, Any]]) -> FastAPI:
    app = FastAPI()

    @app.post("/api/ask")
    async def ask(request: Request) -> Any:
        body = await request.json()
        seen.append({"auth": request.headers.get("authorization"), **body})
        question = body["question"]
        if question == "fail500":
            return JSONResponse({"detail": "engine exploded"}, status_code=500)
        if question == "slow":
            await asyncio.sleep(TIMEOUT * 3)
        return CANNED.get(question, CANNED["good"])

    return app


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(_fake_app(seen), host="127.0.0.1", port=port, log_level="warning",
                            timeout_graceful_shutdown=1)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/", seen
    srv.should_exit = True
    thread.join(timeout=10)


def test_run_http_scores_answers_and_counts_failures(server: tuple[str, list]) -> None:
    url, seen = server
    seen.clear()
    rows = run_http(QUESTIONS, url, token=TOKEN, timeout=TIMEOUT, document_texts=TEXTS,
                    progress=False)
    by_id = {r["id"]: r for r in rows}
    assert [r["id"] for r in rows] == [q["id"] for q in QUESTIONS]

    assert by_id["good"]["passed"] is True and by_id["good"]["hit@1"] is True
    assert by_id["wrong"]["figure_correct"] is False and by_id["wrong"]["quote_valid"] is True
    assert by_id["refuse"]["refusal_correct"] is True
    assert by_id["fail500"]["error"] == "HTTP 500: engine exploded"
    assert by_id["slow"]["error"].startswith("timeout after 1s")
    assert by_id["slow"]["latency_ms"] >= TIMEOUT * 1000 * 0.9
    assert by_id["broken"]["error"] == "response has no boolean 'refused'"

    summary = aggregate(rows)
    assert summary["n_errors"] == 3 and summary["n_questions"] == 6
    assert summary["metrics"]["figure_correct"] == pytest.approx(1 / 5)
    assert summary["metrics"]["refusal_correct"] == 1.0
    assert summary["latency_ms"]["max"] >= TIMEOUT * 1000 * 0.9

    assert {s["auth"] for s in seen} == {f"Bearer {TOKEN}"}
    assert seen[0]["history"] == QUESTIONS[0]["history"]
    assert "mode" not in seen[0]


def test_unreachable_server_is_an_error_row() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rows = run_http(QUESTIONS[:1], f"http://127.0.0.1:{port}", timeout=2, document_texts=TEXTS,
                    progress=False)
    assert rows[0]["error"].startswith("ConnectError") and rows[0]["passed"] is False


def test_run_in_process_turns_exceptions_into_error_rows() -> None:
    def ask(question: str, history: list[dict[str, str]]) -> dict[str, Any]:
        if question == "fail500":
            raise RuntimeError("engine exploded")
        return CANNED.get(question, CANNED["good"])

    rows = run_in_process(QUESTIONS[:4], ask, TEXTS, progress=False)
    assert [r["error"] for r in rows] == [None, None, None, "RuntimeError: engine exploded"]


def test_cli_over_http_writes_report_and_applies_thresholds(
    server: tuple[str, list], tmp_path: Path
) -> None:
    url, _ = server
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("\n".join(json.dumps(q) for q in QUESTIONS[:3]) + "\n", encoding="utf-8")
    out = tmp_path / "report"
    base = ["seed", "--questions", str(qfile), "--url", url, "--out", str(out), "--quiet",
            "--corpus", str(DEFAULT_CORPUS), "--timeout", "5"]
    assert main(base + ["--min-refusal", "1.0", "--max-errors", "0"]) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["metadata"]["mode"] == "fake" and report["metadata"]["target"] == url
    assert len(report["rows"]) == 3
    assert main(base + ["--min-figure-correct", "0.9"]) == 1
    assert (out / "previous.json").exists()
    assert main(["seed", "--questions", str(tmp_path / "nope.jsonl"), "--out", str(out)]) == 2
