"""Sweeps sharing one SQLite store: two started at the same moment on a store that does not exist
yet both finish, with every run in it (MLflow creates the tables once, under a lock)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow


def test_two_sweeps_started_together_on_a_new_store(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"
    procs = [subprocess.Popen([sys.executable, "-m", "pipeline", "-m", f"hydra.sweep.dir={tmp_path / f's{i}'}",
                               f"tracking.uri={uri}", "model.width=8", "trainer.epochs=1", "hydra.sweeper.n_trials=4",
                               "hydra.sweeper.importance=false", "hydra.sweeper.plots=false"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("pipeline").experiment_id], max_results=100)
    assert len(runs) == 2 * (1 + 4) and all(r.info.status == "FINISHED" for r in runs)
