"""A real `beleg serve` process for the battery: start, wait for health, read its RSS and CPU, stop."""
from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

logger = logging.getLogger(__name__)

BIN = Path(sys.executable).parent
# Start-up loads torch, the embedding model and (in generated mode) the local model: about
# 20-40 s on 2 cores; 240 s leaves room for a busy machine.
STARTUP_TIMEOUT_S = 240.0
# Quiet, offline, pinned: the same environment the Makefile gives `beleg serve`.
BASE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False",
            "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "2"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def beleg_env(data_dir: Path, models_dir: Path, extra: Mapping[str, str] = ()) -> dict[str, str]:
    """Environment for a beleg command on its own data folder, sharing one models folder."""
    data_dir.mkdir(parents=True, exist_ok=True)
    link = data_dir / "models"
    if not link.exists():
        link.symlink_to(models_dir.resolve(), target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BELEG_")}
    return {**env, **BASE_ENV, "BELEG_DATA_DIR": str(data_dir), **dict(extra)}


def run_cli(args: list[str], env: Mapping[str, str], timeout: float = 900.0,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    """Runs `beleg ARGS` to completion."""
    done = subprocess.run([str(BIN / "beleg"), *args], env=dict(env), capture_output=True,
                          text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"beleg {' '.join(args)} failed ({done.returncode}): "
                           f"{done.stderr[-2000:]}")
    return done


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class BelegServer:
    """One `beleg serve` process on 127.0.0.1 and a free port."""

    env: dict[str, str]
    log_path: Path
    token: str = ""
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> BelegServer:
        env = {**self.env, **({"BELEG_API_TOKEN": self.token} if self.token else {})}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([str(BIN / "beleg"), "serve", "--port", str(self.port)],
                                     env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        with httpx.Client(timeout=5.0, trust_env=False) as probe:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"beleg serve exited with {self.proc.returncode}; "
                                       f"see {self.log_path}")
                try:
                    if probe.get(self.url + "/api/health").status_code < 500:
                        logger.info("beleg serve is up on %s (pid %d)", self.url, self.pid)
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"beleg serve did not answer within {STARTUP_TIMEOUT_S:.0f} s")

    def client(self, timeout: float = 300.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout,
                            trust_env=False)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss_mb(self) -> float:
        return proc_rss_mb(self.pid)

    def cpu_s(self) -> float:
        return proc_cpu_s(self.pid)

    def stop(self, grace_s: float = 20.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            logger.warning("beleg serve ignored SIGTERM for %.0f s; killing it", grace_s)
            self.proc.kill()
            return self.proc.wait(10)

    def __enter__(self) -> BelegServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path
