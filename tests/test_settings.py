"""Settings: defaults < TOML < env < overrides; invalid values fail listing the valid choices."""
from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import EMBEDDING_ENGINES, LLM_BACKENDS, Settings, SettingsError


@pytest.fixture(autouse=True)
def _no_cwd_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from an empty folder so a developer's ./beleg.toml cannot leak in."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)


def toml(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "beleg.toml"
    p.write_text(body, encoding="utf-8")
    return p


def test_defaults() -> None:
    s = Settings.load(env={})
    assert s.port == 7860
    assert s.host == "127.0.0.1"
    assert s.llm == "local"
    assert s.embedding == "multilingual-e5-small"
    assert s.chroma_url == ""
    assert s.data_dir.name == "data"
    assert s.chroma_dir == s.data_dir / "chroma"
    assert s.lexical_dir == s.data_dir / "lexical" / s.collection
    assert s.max_question_chars == 2000


def test_env_vars(tmp_path: Path) -> None:
    s = Settings.load(env={"BELEG_DATA_DIR": str(tmp_path / "d"), "BELEG_PORT": "8123",
                           "BELEG_LLM": "ollama", "BELEG_LLM_TIMEOUT": "2.5",
                           "BELEG_CHROMA_URL": "http://127.0.0.1:9000", "BELEG_TOP_K": "7"})
    assert s.data_dir == tmp_path / "d"
    assert isinstance(s.data_dir, Path)
    assert s.port == 8123
    assert s.llm == "ollama"
    assert s.llm_timeout == 2.5
    assert s.chroma_url == "http://127.0.0.1:9000"
    assert s.top_k == 7


def test_data_dir_expands_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    s = Settings.load(env={"BELEG_DATA_DIR": "~/beleg-data"})
    assert s.data_dir == tmp_path / "beleg-data"


def test_plain_port_var_and_beleg_port_wins() -> None:
    assert Settings.load(env={"PORT": "9001"}).port == 9001
    assert Settings.load(env={"PORT": "9001", "BELEG_PORT": "9002"}).port == 9002


def test_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setenv("BELEG_DATA_DIR", str(tmp_path / "from-env"))
    monkeypatch.setenv("BELEG_PORT", "8555")
    s = Settings.load()
    assert s.data_dir == tmp_path / "from-env"
    assert s.port == 8555


def test_toml_file(tmp_path: Path) -> None:
    path = toml(tmp_path, '[beleg]\nport = 9100\ndata_dir = "/srv/beleg"\nllm = "openai"\n'
                          'llm_base_url = "http://localhost:8080/v1"\n\n[other]\nport = 1\n')
    s = Settings.load(env={}, config_file=path)
    assert s.port == 9100
    assert s.data_dir == Path("/srv/beleg")
    assert s.llm == "openai"
    assert s.llm_base_url == "http://localhost:8080/v1"


def test_toml_via_beleg_config_and_cwd(tmp_path: Path) -> None:
    path = toml(tmp_path, "[beleg]\nport = 9200\n")
    assert Settings.load(env={"BELEG_CONFIG": str(path)}).port == 9200
    Path("beleg.toml").write_text("[beleg]\nport = 9300\n", encoding="utf-8")  # in the cwd
    assert Settings.load(env={}).port == 9300
    # an explicit BELEG_CONFIG beats ./beleg.toml
    assert Settings.load(env={"BELEG_CONFIG": str(path)}).port == 9200


def test_precedence(tmp_path: Path) -> None:
    path = toml(tmp_path, '[beleg]\nport = 9100\nhost = "0.0.0.0"\ncollection = "from_toml"\n'
                          'top_k = 3\n')
    env = {"BELEG_PORT": "9101", "BELEG_COLLECTION": "from_env"}
    s = Settings.load(env=env, config_file=path, collection="from_override", top_k=None)
    assert s.host == "0.0.0.0"            # TOML beats default
    assert s.port == 9101                 # env beats TOML
    assert s.collection == "from_override"  # override beats env
    assert s.top_k == 3                   # a None override is ignored
    assert s.llm == "local"               # untouched default
    assert Settings.load(env=env, config_file=path, port=9102).port == 9102


@pytest.mark.parametrize("env,needle", [
    ({"BELEG_PORT": "abc"}, "port"),
    ({"PORT": "abc"}, "port"),
    ({"BELEG_THREADS": "two"}, "threads"),
    ({"BELEG_LLM_TIMEOUT": "soon"}, "llm_timeout"),
])
def test_non_numeric_values(env: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.load(env=env)
    msg = str(err.value)
    assert needle in msg and repr(next(iter(env.values()))) in msg
    assert "int" in msg or "float" in msg


@pytest.mark.parametrize("port", ["0", "70000", "-1"])
def test_port_out_of_range(port: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.load(env={"BELEG_PORT": port})
    assert "1-65535" in str(err.value)


def test_unknown_backend_lists_choices() -> None:
    with pytest.raises(SettingsError) as err:
        Settings.load(env={"BELEG_LLM": "gpt5"})
    msg = str(err.value)
    assert "gpt5" in msg
    for backend in LLM_BACKENDS:
        assert backend in msg
    with pytest.raises(SettingsError):
        Settings.load(env={}, llm="LOCAL")


def test_unknown_embedding_engine_lists_choices() -> None:
    with pytest.raises(SettingsError) as err:
        Settings.load(env={"BELEG_EMBEDDING_ENGINE": "onnx"})
    for engine in EMBEDDING_ENGINES:
        assert engine in str(err.value)


def test_threads_must_be_positive() -> None:
    with pytest.raises(SettingsError):
        Settings.load(env={"BELEG_THREADS": "0"})


def test_unknown_toml_key_lists_valid_names(tmp_path: Path) -> None:
    path = toml(tmp_path, "[beleg]\nprot = 9000\n")
    with pytest.raises(SettingsError) as err:
        Settings.load(env={}, config_file=path)
    msg = str(err.value)
    assert "prot" in msg and "'port'" in msg


def test_unknown_override_is_rejected() -> None:
    with pytest.raises(SettingsError):
        Settings.load(env={}, colour="blue")


def test_unreadable_or_invalid_toml(tmp_path: Path) -> None:
    bad = toml(tmp_path, "[beleg\nport = ")
    with pytest.raises(SettingsError) as err:
        Settings.load(env={}, config_file=bad)
    assert str(bad) in str(err.value)
    missing = tmp_path / "missing.toml"
    with pytest.raises(SettingsError) as err:
        Settings.load(env={"BELEG_CONFIG": str(missing)})
    assert str(missing) in str(err.value)


def test_unrelated_env_vars_are_ignored() -> None:
    s = Settings.load(env={"BELEG_NOT_A_SETTING": "x", "HOME": "/root", "LLM": "gpt5"})
    assert s == Settings.load(env={})
