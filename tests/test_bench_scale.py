"""`make bench-scale` at a tiny size: it runs end to end, its synthetic questions find their
paragraphs (so its latencies are those of real searches), and it writes its JSON and PNG."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_scale_benchmark_runs_and_its_questions_find_their_paragraphs(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(REPO / "bench" / "scale.py"), "--sizes", "300",
                    "--out", str(tmp_path)], check=True, cwd=REPO, timeout=600,
                   capture_output=True)
    report = json.loads((tmp_path / "scale.json").read_text())
    (row,) = report["rows"]
    assert row["chunks"] >= 300 and row["sentences"] >= 2 * row["chunks"]
    assert row["retrieval_ms"]["n"] >= 50 and row["hit_at_10"] >= 0.9
    assert row["one_document_write_s"] > 0 and row["rss_warm_mb"]["VmRSS"] > 0
    assert (tmp_path / "scale.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
