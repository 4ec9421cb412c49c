"""Sweeps sharing one SQLite store: five started at the same moment on a store that does not exist
yet all finish, with every run in it (MLflow creates the tables once, under a lock); a store held
locked past the busy timeout during a trial delays it, and the trial is run again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import assert_one_finished_run_per_trial, trial_values

pytestmark = pytest.mark.slow


def test_five_sweeps_started_together_on_a_new_store(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"
    procs = [subprocess.Popen([sys.executable, "-m", "pipeline", "-m", f"hydra.sweep.dir={tmp_path / f's{i}'}",
                               f"tracking.uri={uri}", "model.width=8", "trainer.epochs=1", "hydra.sweeper.n_trials=4",
                               "hydra.sweeper.importance=false", "hydra.sweeper.plots=false"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(5)]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("pipeline").experiment_id], max_results=100)
    assert len(runs) == 5 * (1 + 4) and all(r.info.status == "FINISHED" for r in runs)


def test_a_store_locked_past_the_busy_timeout_is_retried_not_failed(tmp_path: Path, mlflow_template: Path) -> None:
    """Another process holds the SQLite store locked for 30 s while trial 1 runs: its writes
    time out after MLflow's 20 s, the trial is recorded as unavailable (not failed) and run again
    after 5 s, and the sweep ends with the values of an undisturbed one."""
    import os
    import shutil
    import sqlite3
    import time

    import yaml

    faults = str(Path(__file__).parent / "apps" / "faults")
    args = ["model.width=8", "trainer.epochs=2", "hydra.sweeper.n_trials=4", "hydra.sweeper.importance=false",
            "hydra.sweeper.plots=false"]

    def sweep(name: str, **env: str) -> tuple[subprocess.Popen, Path, Path]:
        db = tmp_path / f"{name}.db"
        shutil.copy(mlflow_template, db)
        proc = subprocess.Popen([sys.executable, "-m", "pipeline", "-m", f"hydra.sweep.dir={tmp_path / name}",
                                 f"tracking.uri=sqlite:///{db}", *args], cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env={**os.environ, **env})
        return proc, tmp_path / name, db

    reference, ref_dir, _ = sweep("reference")  # beside the locked one (2 cores), not before it
    proc, sweep_dir, db = sweep("locked", PYTHONPATH=faults, PIPELINE_PAUSE_AT="1:1:2")
    deadline = time.monotonic() + 300
    while not (sweep_dir / "1" / "paused").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    lock = sqlite3.connect(db, timeout=60, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    time.sleep(30)
    lock.execute("COMMIT")
    lock.close()
    out, err = proc.communicate(timeout=600)
    _, reference_err = reference.communicate(timeout=600)
    assert reference.returncode == 0, reference_err[-3000:]
    assert proc.returncode == 0, err[-3000:]
    assert "1 trial(s) could not run, not for a fault of theirs (" in out + err and "database is locked" in out + err
    trials = yaml.safe_load((sweep_dir / "trials.yaml").read_text())
    assert [t["value"] for t in trials] == trial_values(ref_dir)
    assert all(t["error"] is None for t in trials)
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    runs = client.search_runs([client.get_experiment_by_name("pipeline").experiment_id], max_results=100)
    assert_one_finished_run_per_trial(runs, 4)
    assert all(r.info.status != "FAILED" for r in runs)  # the first try of trial 1 is KILLED, not FAILED
