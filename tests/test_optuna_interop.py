"""The default search space runs unchanged under Hydra's Optuna sweeper (extra `optuna`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow
pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="install the `optuna` extra")


def test_default_space_under_the_optuna_sweeper(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=4",
         "hydra.sweeper.n_jobs=1", f"hydra.sweep.dir={tmp_path / 'sweep'}", "trainer.epochs=2",
         "tracking.enabled=false"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env={**os.environ, "HYDRA_FULL_ERROR": "0"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert set(results["best_params"]) == {"optimizer.lr", "optimizer.momentum", "model.width",
                                           "trainer.batch_size"}
    assert 1e-4 <= results["best_params"]["optimizer.lr"] <= 1


def test_the_optuna_route_survives_a_diverging_trial(tmp_path: Path) -> None:
    """hydra-optuna-sweeper stops at the first failed trial unless max_failure_rate is set; this
    app's pipeline_optuna sets it (0.5, as the zoom sweeper's), so a diverged trial is a failed
    trial; plain hydra/sweeper=optuna stops there (its default, 0)."""
    def args(sweeper: str, sweep_dir: Path) -> list[str]:
        return [sys.executable, "-m", "pipeline", "-m", f"hydra/sweeper={sweeper}", "hydra.sweeper.n_trials=10",
                "hydra.sweeper.sampler.seed=0",  # two of its ten trials diverge, none in the first batch of two
                f"hydra.sweep.dir={sweep_dir}", "trainer.epochs=2", "normalization=none",
                "optimizer.lr=tag(log, interval(1e-2, 30))", "tracking.enabled=false"]

    proc = subprocess.run(args("pipeline_optuna", tmp_path / "sweep"), cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "HYDRA_FULL_ERROR": "0"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Failed experiment: training loss became non-finite" in proc.stdout + proc.stderr  # it did diverge
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert results["best_value"] < 1
    plain = subprocess.run(args("optuna", tmp_path / "plain"), cwd=tmp_path, capture_output=True, text=True,
                           timeout=600, env={**os.environ, "HYDRA_FULL_ERROR": "0"})
    assert plain.returncode != 0 and "TrainingDiverged" in plain.stderr
