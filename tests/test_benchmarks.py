"""The benchmark suite's quick mode still runs and writes every key (numbers are not judged)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
KEYS = ["train_steps_per_s", "torch_steps_per_s", "train_speedup_vs_torch", "sweep_overhead_ratio",
        "tracking_share", "parallel_speedup", "search", "peak_rss_mb"]


def test_quick_benchmark_runs(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert all(key in results for key in KEYS)
    assert results["train_steps_per_s"] > 0 and -1 < results["tracking_share"] < 1  # quick: noisy, not judged
    # quick mode times 2 and 4 trials once: the overhead slope is noise and can come out negative
    assert math.isfinite(results["sweep_overhead_ratio"]) and results["parallel_speedup"] > 0
    assert "| speed-up vs PyTorch |" in proc.stdout or results["torch_steps_per_s"] is None
    assert {"branin", "hartmann6"} <= set(results["search"]) and "branin: best regret" in proc.stdout
    assert "parzen, one trial at a time" in results["search"]["branin"]
    budgets = {c["epochs"] for c in results["fidelity"]["spirals_batch_norm"].values()}
    assert budgets and max(budgets) <= 320  # the cheap fidelity schedule kept to its budget


def test_trained_problem_is_the_apps_trial() -> None:
    """A trained problem of the search benchmark is this app's trial on its default space: the
    value is the run's val_loss, the same on a second call, and the space is conf/config.yaml's."""
    from benchmarks.problems import TRAINED
    from pipeline.search.space import Interval

    problem = TRAINED["spirals_batch_norm"]
    params = {"optimizer.lr": 0.05, "optimizer.momentum": 0.9, "model.width": 32, "trainer.batch_size": 64}
    value = problem.f(params)
    assert 0 < value < 1.2 and problem.f(params) == value  # ln(3) = 1.10: better than chance
    lr = problem.space.dim("optimizer.lr")
    assert isinstance(lr, Interval) and (lr.low, lr.high, lr.scale) == (1e-4, 1, None)
