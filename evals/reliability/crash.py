"""Ingest interrupted by SIGKILL or by a disk that fills up, and an audit of the store after it."""
from __future__ import annotations

import json
import logging
import os
import random
import resource
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from evals.reliability.server import BIN, run_cli

logger = logging.getLogger(__name__)

STATE_ID = "__state__"


@dataclass(frozen=True)
class Audit:
    """What a fresh reader finds in an embedded store."""

    documents: int
    complete: int     # documents whose stored chunks match their record (count and hash)
    incomplete: list[str]
    orphan_sources: list[str]  # chunks whose document has no record (a write cut short)
    opened: bool
    error: str = ""

    @property
    def consistent(self) -> bool:
        return self.opened and not self.incomplete


def audit_store(data_dir: Path, collection: str = "beleg") -> Audit:
    """Reads the embedded Chroma store under ``data_dir`` directly, as a new process would."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    try:
        client = chromadb.PersistentClient(path=str(data_dir / "chroma"),
                                           settings=ChromaSettings(anonymized_telemetry=False))
        names = {c.name for c in client.list_collections()}
        if collection not in names:
            return Audit(0, 0, [], [], True)
        chunks = client.get_collection(collection).get(include=["metadatas"])
        docs = client.get_collection(f"{collection}_documents").get(include=["metadatas"])
    except Exception as exc:  # the point is to report whatever a reader would hit
        return Audit(0, 0, [], [], False, repr(exc)[:300])
    per_source: dict[str, list[str]] = {}
    for meta in chunks["metadatas"]:
        per_source.setdefault(meta["source"], []).append(meta.get("doc_hash", ""))
    records = {i: m for i, m in zip(docs["ids"], docs["metadatas"]) if i != STATE_ID}
    incomplete = []
    for source, meta in records.items():
        hashes = per_source.get(source, [])
        if len(hashes) != int(meta["chunks"]) or any(h != meta["hash"] for h in hashes):
            incomplete.append(source)
    orphans = sorted(set(per_source) - set(records))
    return Audit(len(records), len(records) - len(incomplete), sorted(incomplete), orphans, True)


def write_articles(folder: Path, xquad_json: Path) -> int:
    """One text file per XQuAD article (its paragraphs joined): a realistic ingest workload."""
    folder.mkdir(parents=True, exist_ok=True)
    data = json.loads(xquad_json.read_text(encoding="utf-8"))["data"]
    for i, article in enumerate(data):
        text = "\n\n".join(p["context"] for p in article["paragraphs"])
        (folder / f"article_{i:02d}.txt").write_text(f"{article['title']}\n\n{text}\n",
                                                     encoding="utf-8")
    return len(data)


@dataclass(frozen=True)
class KillResult:
    after_s: float
    audit: Audit


def kill_during_ingest(folder: Path, env: Mapping[str, str], data_dir: Path, *, runs: int = 5,
                       seed: int = 7, window: tuple[float, float] = (10.0, 90.0)
                       ) -> tuple[list[KillResult], Audit]:
    """``runs`` times: start `beleg ingest FOLDER`, SIGKILL it at a random moment in ``window``
    seconds, audit. Then one ingest to completion, which must heal whatever the kills left."""
    rng = random.Random(seed)
    results = []
    for _ in range(runs):
        proc = subprocess.Popen([str(BIN / "beleg"), "ingest", "--json", str(folder)],
                                env=dict(env), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        wait = rng.uniform(*window)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        found = audit_store(data_dir)
        logger.info("kill -9 after %.1f s: %d documents, incomplete %s, orphans %s", wait,
                    found.documents, found.incomplete, found.orphan_sources)
        results.append(KillResult(wait, found))
    run_cli(["ingest", "--json", str(folder)], env)
    return results, audit_store(data_dir)


@dataclass(frozen=True)
class DiskFullResult:
    how: str              # "tmpfs of N MB" or "RLIMIT_FSIZE of N MB"
    exit_code: int
    message: str          # the last line the user saw
    traceback: bool       # a Python traceback reached the user
    audit_after_fault: Audit
    healed: Audit         # after space came back and ingest ran again
    seconds: float


def _mount_tmpfs(path: Path, megabytes: int) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs",
                           str(path)], capture_output=True)
    return done.returncode == 0


def disk_full_during_ingest(folder: Path, env: Mapping[str, str], data_dir: Path,
                            megabytes: int) -> DiskFullResult:
    """Ingests into a data folder with only ``megabytes`` of room: a tmpfs when we may mount
    one (root), else a file-size limit on the process (each file the store writes is capped)."""
    from evals.reliability.server import beleg_env

    models = (data_dir / "models").resolve() if (data_dir / "models").exists() else None
    mounted = _mount_tmpfs(data_dir, megabytes)
    if mounted and models is not None:
        env = beleg_env(data_dir, models, {k: v for k, v in env.items()
                                           if k.startswith("BELEG_") and k != "BELEG_DATA_DIR"})
    how = f"tmpfs of {megabytes} MB" if mounted else f"RLIMIT_FSIZE of {megabytes} MB"

    def limit() -> None:
        if not mounted:
            resource.setrlimit(resource.RLIMIT_FSIZE, (megabytes * 2**20, megabytes * 2**20))

    t0 = time.monotonic()
    try:
        done = subprocess.run([str(BIN / "beleg"), "ingest", str(folder)], env=dict(env),
                              capture_output=True, text=True, timeout=900, preexec_fn=limit)
        seconds = time.monotonic() - t0
        err = done.stderr.strip().splitlines()
        after = audit_store(data_dir)
        if mounted:
            subprocess.run(["mount", "-o", f"remount,size={megabytes * 20}m", str(data_dir)],
                           check=True)
            run_cli(["ingest", "--json", str(folder)], env)
        else:
            run_cli(["ingest", "--json", str(folder)], env)
        healed = audit_store(data_dir)
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(data_dir)], capture_output=True)
    return DiskFullResult(how, done.returncode, err[-1] if err else "",
                          any(line.startswith("Traceback") for line in err), after, healed,
                          seconds)
