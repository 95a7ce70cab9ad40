"""Start-up time of the CLI's light commands (no model load): median of 5 runs each, measured
side by side in one run, with `beleg search` (which loads the embedding model) as the contrast.

Prints Markdown and writes reports/bench/cli_startup.json. Part of `make bench`.
"""
from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNS = 5
COMMANDS = [["--help"], ["documents"], ["collections"], ["keys", "list"], ["models", "--json"],
            ["search", "Soldaten"]]
logger = logging.getLogger("bench.cli_startup")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out_dir = REPO / "reports" / "bench"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "BELEG_DATA_DIR": tmp, "BELEG_LLM": "extractive"}
        models = REPO / "data" / "models"
        if models.is_dir():
            (Path(tmp) / "models").symlink_to(models)
        subprocess.run([sys.executable, "-m", "app.cli", "ingest", str(REPO / "corpus")], env=env,
                       cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        rows = {}
        for args in COMMANDS:
            times = []
            for _ in range(RUNS):
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "app.cli", *args], env=env, cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
                times.append(time.perf_counter() - t0)
            rows[" ".join(args)] = round(statistics.median(times), 2)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "cli_startup.json").write_text(json.dumps(
        {"cores": os.cpu_count(), "runs": RUNS, "median_s": rows}, indent=1), encoding="utf-8")
    logger.info("| beleg command | median start-to-exit (s) |\n|---|---|")
    for cmd, s in rows.items():
        logger.info("| %s | %.2f |", cmd, s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
