"""The benchmark suite's quick mode still runs and writes every key (numbers are not judged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
KEYS = ["train_steps_per_s", "torch_steps_per_s", "train_speedup_vs_torch", "sweep_overhead_ratio",
        "tracking_share", "parallel_speedup", "search_quality", "peak_rss_mb"]


def test_quick_benchmark_runs(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert all(key in results for key in KEYS)
    assert results["train_steps_per_s"] > 0 and -1 < results["tracking_share"] < 1  # quick: noisy, not judged
    assert results["sweep_overhead_ratio"] > 0 and results["parallel_speedup"] > 0
    assert {"zoom+log_random", "log_random", "random", "grid"} <= set(results["search_quality"])
    assert "| speed-up vs PyTorch |" in proc.stdout or results["torch_steps_per_s"] is None
    assert {"branin", "hartmann6"} <= set(results["search"]) and "branin: best regret" in proc.stdout
    assert "parzen, one trial at a time" in results["search"]["branin"]
