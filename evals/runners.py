"""Load the question set and run it against the engine in-process or over HTTP."""
from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from evals.metrics import score_answer

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_QUESTIONS = Path(__file__).resolve().parent / "data" / "seed_questions.jsonl"
DEFAULT_CORPUS = REPO_ROOT / "corpus"
TEXT_SUFFIXES = (".txt", ".md")

# A leading " date 2025-09-18 " line prefix is metadata, not document text.
DATE_MARKER = re.compile(r"\A\s*date \d{4}-\d{2}-\d{2}[ \t]+")

Ask = Callable[[str, list[dict[str, str]]], dict[str, Any]]

_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "user_input": str,
    "reference": str,
    "expected_figures": list,
    "reference_quote": str,
    "language": str,
    "answerable": bool,
    "tags": list,
}
_LANGUAGES = ("de", "en")
_ROLES = ("user", "assistant")


class QuestionFileError(ValueError):
    """The question file cannot be used; the message names the line and the field."""


# --------------------------------------------------------------------------- inputs


def _check_row(row: Any, where: str) -> None:
    if not isinstance(row, dict):
        raise QuestionFileError(f"{where}: a row must be a JSON object")
    for name, kind in _REQUIRED.items():
        if name not in row:
            raise QuestionFileError(f"{where}: missing field {name!r}")
        if not isinstance(row[name], kind):
            raise QuestionFileError(f"{where}: field {name!r} must be {kind.__name__}")
    if not row["id"].strip() or not row["user_input"].strip():
        raise QuestionFileError(f"{where}: 'id' and 'user_input' must not be empty")
    if row["language"] not in _LANGUAGES:
        raise QuestionFileError(f"{where}: 'language' must be one of {_LANGUAGES}")
    for name in ("expected_figures", "tags", "forbidden_figures"):
        if not all(isinstance(x, str) for x in row.get(name, [])):
            raise QuestionFileError(f"{where}: {name!r} must be a list of strings")
    if row["answerable"] and not row["reference_quote"]:
        raise QuestionFileError(f"{where}: an answerable row needs a 'reference_quote'")
    if not row["answerable"] and row["expected_figures"]:
        raise QuestionFileError(f"{where}: an unanswerable row cannot expect figures")
    history = row.get("history", [])
    if not isinstance(history, list):
        raise QuestionFileError(f"{where}: 'history' must be a list of turns")
    for turn in history:
        if (not isinstance(turn, dict) or turn.get("role") not in _ROLES
                or not isinstance(turn.get("content"), str)):
            raise QuestionFileError(
                f"{where}: each history turn must be {{'role': 'user'|'assistant', 'content': str}}"
            )


def load_questions(path: str | Path = DEFAULT_QUESTIONS) -> list[dict[str, Any]]:
    """Read and validate a JSONL question file; raises QuestionFileError on the first problem."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise QuestionFileError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QuestionFileError(f"{where}: invalid JSON ({exc.msg})") from exc
        _check_row(row, where)
        if row["id"] in seen:
            raise QuestionFileError(f"{where}: duplicate id {row['id']!r}")
        seen.add(row["id"])
        rows.append(row)
    if not rows:
        raise QuestionFileError(f"{path}: no questions")
    return rows


def document_text(raw: str) -> str:
    """A file's text as beleg sees it: the leading date marker removed."""
    return DATE_MARKER.sub("", raw, count=1)


def load_document_texts(corpus_dir: str | Path = DEFAULT_CORPUS) -> dict[str, str]:
    """Texts of the plain-text documents in a corpus folder, keyed by file name."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise FileNotFoundError(f"corpus folder not found: {corpus_dir}")
    texts: dict[str, str] = {}
    for path in sorted(corpus_dir.iterdir()):
        if path.is_file() and path.suffix.lower() in TEXT_SUFFIXES:
            texts[path.name] = document_text(path.read_text(encoding="utf-8"))
        elif path.is_file():
            logger.debug("skipping %s: not a plain-text document", path.name)
    return texts


# --------------------------------------------------------------------------- runs


def _history(row: dict[str, Any]) -> list[dict[str, str]]:
    return [{"role": t["role"], "content": t["content"]} for t in row.get("history") or []]


def _progress(questions: list[dict[str, Any]], desc: str, enabled: bool) -> Iterable[dict]:
    return tqdm(questions, desc=desc, unit="q", disable=not enabled)


def run_in_process(
    questions: list[dict[str, Any]],
    ask: Ask,
    document_texts: dict[str, str],
    *,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Ask every question through ``ask(question, history)``; exceptions become error rows."""
    scored: list[dict[str, Any]] = []
    for row in _progress(questions, "beleg-eval (in-process)", progress):
        response: dict[str, Any] | None = None
        error: str | None = None
        started = time.perf_counter()
        try:
            result = ask(row["user_input"], _history(row))
            response = result.to_dict() if hasattr(result, "to_dict") else result
        except Exception as exc:  # noqa: BLE001 - every failure is a scored error row
            error = f"{type(exc).__name__}: {exc}"
            logger.warning("%s failed: %s", row["id"], error)
        latency = (time.perf_counter() - started) * 1000.0
        scored.append(score_answer(row, response, error, latency, document_texts))
    return scored


def _detail(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200]
    return str(body.get("detail", body)) if isinstance(body, dict) else str(body)[:200]


def _post(
    client: httpx.Client, url: str, body: dict[str, Any], timeout: float
) -> tuple[dict | None, str | None]:
    try:
        resp = client.post(url, json=body)
    except httpx.TimeoutException:
        return None, f"timeout after {timeout:g}s"
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if resp.status_code >= 400:
        return None, f"HTTP {resp.status_code}: {_detail(resp)}"
    try:
        return resp.json(), None
    except ValueError:
        return None, f"HTTP {resp.status_code}: response is not JSON"


def run_http(
    questions: list[dict[str, Any]],
    base_url: str,
    token: str | None = None,
    timeout: float = 120,
    *,
    document_texts: dict[str, str] | None = None,
    mode: str | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """POST every question to {base_url}/api/ask; errors, HTTP failures and timeouts are scored.

    ``document_texts`` defaults to the repository's corpus folder; ``mode`` is sent only when set.
    """
    texts = load_document_texts() if document_texts is None else document_texts
    url = base_url.rstrip("/") + "/api/ask"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    scored: list[dict[str, Any]] = []
    with httpx.Client(timeout=timeout, headers=headers) as client:
        for row in _progress(questions, "beleg-eval (http)", progress):
            body: dict[str, Any] = {"question": row["user_input"], "history": _history(row)}
            if mode:
                body["mode"] = mode
            started = time.perf_counter()
            try:
                response, error = _post(client, url, body, timeout)
            except Exception as exc:  # noqa: BLE001 - one question never ends the run
                response, error = None, f"{type(exc).__name__}: {exc}"
            latency = (time.perf_counter() - started) * 1000.0
            if error:
                logger.warning("%s failed: %s", row["id"], error)
            scored.append(score_answer(row, response, error, latency, texts))
    return scored
