"""Parallel trials into one new SQLite store: no schema race, every run and metric point kept."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import sweep_runs

pytestmark = pytest.mark.slow


def test_two_workers_32_trials_into_a_new_sqlite_store(tmp_path: Path) -> None:
    db = tmp_path / "new" / "mlflow.db"  # does not exist yet: the sweeping process creates it
    epochs, depth = 2, 2
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
         f"hydra.sweep.dir={tmp_path / 'sweep'}", f"tracking.uri=sqlite:///{db}", f"trainer.epochs={epochs}",
         f"model.depth={depth}", "model.width=tag(log, int(interval(8, 32)))", "hydra.sweeper.n_trials=32",
         "hydra.sweeper.rounds=2", "hydra.verbose=pipeline.sweep.warmup"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900, env={**os.environ, "HYDRA_FULL_ERROR": "0"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "table already exists" not in proc.stderr and "database is locked" not in proc.stderr
    # the sweeper warmed the pool before the first launch (pipeline/sweep/warmup.py, a debug line)
    assert "2 joblib workers warmed" in proc.stdout + proc.stderr
    client, parent, trials = sweep_runs(f"sqlite:///{db}")
    assert len(trials) == 32 and all(t.info.status == "FINISHED" for t in trials)
    assert sorted(int(t.data.tags["job"]) for t in trials) == list(range(32))
    # every metric point: per epoch 4 losses/accuracies + 3 batch-norm summaries per layer (running mean and
    # variance averages, batch_drift), then 2 test metrics
    per_trial = epochs * (4 + 3 * depth) + 2
    with sqlite3.connect(db) as conn:
        marks = ",".join("?" * len(trials))
        counts = dict(conn.execute(
            f"SELECT run_uuid, COUNT(*) FROM metrics WHERE run_uuid IN ({marks}) GROUP BY run_uuid",
            [t.info.run_id for t in trials]).fetchall())
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert counts == {t.info.run_id: per_trial for t in trials}
    assert mode.lower() == "wal"
