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
