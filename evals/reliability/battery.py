"""Runs the reliability battery stage by stage against real processes and keeps every result."""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evals.reliability.chroma_fault import CHROMA, ChromaProcess, run_chroma_fault
from evals.reliability.crash import audit_store, disk_full_during_ingest, kill_during_ingest, write_articles
from evals.reliability.fault_llm import FaultServer
from evals.reliability.faults import fault_env, run_faults
from evals.reliability.load import drift_mb_per_10min, run_load, xquad_questions
from evals.reliability.server import BelegServer, beleg_env, free_port, fresh_dir, run_cli

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
XQUAD = REPO / "evals" / "data" / "xquad"
STAGES = ("inputs", "faults", "chroma", "kill9", "diskfull", "load", "soak")
TOKEN = "battery-token"
EXTRACTIVE = {"BELEG_LLM": "extractive"}


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)[:200]  # request payloads (bytes, files) are kept as a short repr


class Battery:
    """Each stage writes its figures into ``results`` (and OUT/results.json) as it ends, so an
    interrupted run keeps what it measured."""

    def __init__(self, out: Path, *, load_seconds: float = 120.0, soak_minutes: float = 30.0,
                 kill_runs: int = 5) -> None:
        self.out = out
        self.work = out / "work"
        self.models = self.work / "models"
        self.load_seconds = load_seconds
        self.soak_minutes = soak_minutes
        self.kill_runs = kill_runs
        path = out / "results.json"
        self.results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

    # ---- helpers ---------------------------------------------------------------------------
    def _save(self, stage: str, value: Any) -> None:
        self.results[stage] = _jsonable(value)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "results.json").write_text(json.dumps(self.results, indent=1,
                                                          ensure_ascii=False))

    def _env(self, name: str, extra: dict[str, str] | None = None, fresh: bool = False
             ) -> tuple[Path, dict[str, str]]:
        data = self.work / name
        if fresh:
            fresh_dir(data)
        return data, beleg_env(data, self.models, extra or {})

    def _server(self, env: dict[str, str], name: str, token: str = "") -> BelegServer:
        return BelegServer(env, self.out / f"{name}.log", token=token)

    def _seed_env(self, extra: dict[str, str]) -> dict[str, str]:
        """Settings for the data folder holding the seed article (ingested on first use)."""
        data, env = self._env("seed", extra)
        if not audit_store(data).documents:
            run_cli(["ingest", str(REPO / "corpus")], {**env, **EXTRACTIVE})
        return env

    def prepare(self) -> None:
        """The models (once, shared by every data folder) and the article folder."""
        self.models.mkdir(parents=True, exist_ok=True)
        _, env = self._env("models-home")
        run_cli(["models", "--fetch", "--json"], env, timeout=1800)
        write_articles(self.work / "articles", XQUAD / "xquad.de.dev.json")

    # ---- stages ----------------------------------------------------------------------------
    def inputs(self) -> None:
        from evals.reliability.inputs import run_inputs

        env = self._seed_env(EXTRACTIVE)
        with self._server(env, "inputs-open") as open_server:
            open_results = run_inputs(open_server.url)
        with self._server(env, "inputs-token", TOKEN) as token_server:
            token_results = run_inputs(token_server.url, TOKEN)
        self._save("inputs", {"open": open_results, "token": token_results})

    def faults(self) -> None:
        llm = FaultServer(free_port()).begin()
        try:
            env = self._seed_env({**fault_env(), "BELEG_LLM_BASE_URL": llm.url})
            with self._server(env, "faults") as server:
                self._save("faults", run_faults(server, llm))
        finally:
            llm.end()

    def chroma(self) -> None:
        if not CHROMA.exists():
            self._save("chroma", {"skipped": "the chroma CLI is not installed"})
            return
        root = fresh_dir(self.work / "chroma-server")
        chroma = ChromaProcess(root / "db", self.out / "chroma.log").start()
        try:
            _, env = self._env("chroma-client", {**EXTRACTIVE, "BELEG_CHROMA_URL": chroma.url},
                               fresh=True)
            run_cli(["ingest", str(REPO / "corpus")], env)
            with self._server(env, "chroma") as server:
                found = run_chroma_fault(server, chroma)
                alive = server.alive()
            self._save("chroma", {"by_phase": found.by_phase(), "recovery_s": found.recovery_s,
                                  "server_errors": found.server_errors,
                                  "slowest_down_s": found.slowest_down_s,
                                  "server_alive": alive,
                                  "down_details": sorted({s.detail for s in found.samples
                                                          if s.phase == "down" and s.detail})[:5]})
        finally:
            chroma.stop()

    def kill9(self) -> None:
        data, env = self._env("articles-store", EXTRACTIVE, fresh=True)
        kills, healed = kill_during_ingest(self.work / "articles", env, data,
                                           runs=self.kill_runs)
        run_cli(["ingest", str(REPO / "corpus")], env)
        size = sum(p.stat().st_size for p in (data / "chroma").rglob("*") if p.is_file())
        self._save("kill9", {"kills": kills, "healed": healed, "store_mb": size / 2**20})

    def diskfull(self) -> None:
        full_mb = float(self.results.get("kill9", {}).get("store_mb") or 16.0)
        room = max(4, int(full_mb / 2))
        data = fresh_dir(self.work / "diskfull")
        (data / "models").symlink_to(self.models.resolve(), target_is_directory=True)
        _, env = self._env("diskfull", EXTRACTIVE)
        self._save("diskfull", disk_full_during_ingest(self.work / "articles", env, data, room))

    def _load_server(self, extra: dict[str, str] | None = None
                     ) -> tuple[BelegServer, list[str]]:
        _, env = self._env("articles-store", extra)  # the local model: the default settings
        if not audit_store(self.work / "articles-store").documents:
            raise RuntimeError("the kill9 stage builds the store that load and soak ask")
        questions = xquad_questions(XQUAD / "xquad.de.dev.json", XQUAD / "xquad.en.dev.json")
        return self._server(env, "load"), questions

    def load(self) -> None:
        """20 clients in extractive mode (with the default answer slots, and with as many
        slots as clients, side by side), then 3 clients in the default mode."""
        server, questions = self._load_server({"BELEG_ANSWER_SLOTS": "20"})
        with server:
            unlimited = run_load(server, questions, clients=20, seconds=self.load_seconds,
                                 mode="extractive")
        server, questions = self._load_server()
        with server:
            extractive = run_load(server, questions, clients=20, seconds=self.load_seconds,
                                  mode="extractive")
            generated = run_load(server, questions[5000:] or questions, clients=3,
                                 seconds=self.load_seconds)
        self._save("load", {"extractive": self._load_summary(extractive),
                            "extractive_20_slots": self._load_summary(unlimited),
                            "generated": self._load_summary(generated)})

    @staticmethod
    def _load_summary(result: Any) -> dict[str, Any]:
        return {"clients": result.clients, "mode": result.mode, "seconds": result.seconds,
                "requests": result.requests, "errors": result.errors,
                "statuses": result.statuses, "p50_s": result.percentile(50),
                "p95_s": result.percentile(95)}

    def soak(self) -> None:
        server, questions = self._load_server()
        with server:
            started_rss = server.rss_mb()
            result = run_load(server, questions, clients=4, seconds=self.soak_minutes * 60,
                              sample_every_s=30.0)
        warmup = min(5.0, self.soak_minutes / 3)
        self._save("soak", {**self._load_summary(result), "rss_start_mb": started_rss,
                            "rss_mb": result.rss_mb, "warmup_min": warmup,
                            "drift_mb_per_10min": drift_mb_per_10min(result.rss_mb, warmup)})

    def run(self, stages: Sequence[str]) -> dict[str, Any]:
        self.prepare()
        steps: dict[str, Callable[[], None]] = {s: getattr(self, s) for s in STAGES}
        for stage in stages:
            t0 = time.monotonic()
            logger.warning("stage %s ...", stage)
            try:
                steps[stage]()
            except Exception as exc:  # one broken stage must not hide the others' figures
                logger.exception("stage %s failed", stage)
                self._save(stage, {"failed": repr(exc)[:500]})
            logger.warning("stage %s done in %.0f s", stage, time.monotonic() - t0)
            self.results.setdefault("seconds", {})[stage] = round(time.monotonic() - t0)
            self._save("seconds", self.results["seconds"])
        return self.results
