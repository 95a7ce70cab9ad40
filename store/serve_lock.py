"""One writer per embedded store: a running server holds a lock that CLI writes respect."""
from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from store.collection import StoreError

LOCK_NAME = "serve.lock"


class StoreBusy(StoreError):
    """Another process (a running `beleg serve`) owns the embedded store."""


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    pid, url = info.get("pid", "?"), info.get("url", "")
    return f"a beleg server (pid {pid}{', ' + url if url else ''})"


def _take(data_dir: Path, role: str, url: str = "") -> IO[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_NAME
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the caller's lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        who = _holder(path)
        if role == "serve":
            raise StoreBusy(f"{who} already serves the store in {data_dir}; stop it, or give "
                            "this one its own BELEG_DATA_DIR, or share a Chroma server "
                            "(BELEG_CHROMA_URL)") from None
        raise StoreBusy(f"{who} is serving the store in {data_dir}, so this command would "
                        "change it behind the server's back. Add or remove documents through "
                        "the server (POST /api/documents, DELETE /api/documents/<name>), or "
                        "stop it first; to share one store between processes, run it as a "
                        "Chroma server (BELEG_CHROMA_URL).") from None
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "role": role, "url": url}))
    handle.flush()
    return handle


def hold_for_serving(data_dir: Path, url: str = "") -> IO[str]:
    """Take the store for a server's lifetime (closing the handle releases it)."""
    return _take(data_dir, "serve", url)


@contextmanager
def exclusive_write(data_dir: Path) -> Iterator[None]:
    """Hold the store for one CLI write; StoreBusy when a server holds it."""
    handle = _take(data_dir, "cli")
    try:
        yield
    finally:
        handle.close()
