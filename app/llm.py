"""Chat generators behind one seam: in-process llama.cpp, OpenAI-compatible HTTP servers, Ollama."""

from __future__ import annotations

from pathlib import Path

from app.llm_base import (
    LLM,
    BackendUnavailable,
    ChatResult,
    ModelFileError,
    TokenCallback,
)
from app.llm_http import DEFAULT_OLLAMA_URL, HEALTH_TIMEOUT_S, OllamaLLM, OpenAICompatibleLLM
from app.llm_local import LocalLLM

__all__ = [
    "BACKENDS",
    "DEFAULT_OLLAMA_URL",
    "HEALTH_TIMEOUT_S",
    "LLM",
    "BackendUnavailable",
    "ChatResult",
    "LocalLLM",
    "ModelFileError",
    "OllamaLLM",
    "OpenAICompatibleLLM",
    "TokenCallback",
    "build_llm",
]

BACKENDS = ("local", "openai", "ollama")


def build_llm(
    backend: str,
    *,
    model_path: Path | None = None,
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    timeout: float = 60.0,
    threads: int = 2,
    n_ctx: int = 4096,
) -> LLM:
    """Make the generator for one backend name ("local", "openai" or "ollama")."""
    match backend:
        case "local":
            if model_path is None:
                raise ValueError(
                    "the local backend needs model_path (a GGUF file; "
                    "app.model_files.ensure_default_model() provides the default one)"
                )
            return LocalLLM(Path(model_path), threads=threads, n_ctx=n_ctx, timeout=timeout)
        case "openai":
            if not base_url or not model:
                raise ValueError(
                    "the openai backend needs base_url (e.g. http://127.0.0.1:8000/v1) and model"
                )
            return OpenAICompatibleLLM(base_url, model, api_key=api_key, timeout=timeout)
        case "ollama":
            if not model:
                raise ValueError("the ollama backend needs model (e.g. qwen2.5:1.5b-instruct)")
            return OllamaLLM(
                model,
                base_url=base_url or DEFAULT_OLLAMA_URL,
                timeout=timeout,
                n_ctx=n_ctx,
                api_key=api_key,
            )
        case _:
            raise ValueError(f"unknown LLM backend {backend!r}; valid choices: {list(BACKENDS)}")
