"""Trials on Ray through Hydra's own hydra-ray-launcher (extra `ray`), lineage intact."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import sweep_runs

pytestmark = pytest.mark.slow
pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="install the `ray` extra: pip install -e .[ray]")


def test_sweep_on_a_local_ray_instance(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "-m", "hydra/launcher=ray", f"hydra.sweep.dir={tmp_path / 'sweep'}",
         f"tracking.uri=sqlite:///{db}", "trainer.epochs=2", "model.width=16", "hydra.sweeper.n_trials=6",
         "hydra.sweeper.rounds=2", "+hydra.launcher.ray.init.num_cpus=2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900,
        env={**os.environ, "HYDRA_FULL_ERROR": "0", "RAY_USAGE_STATS_ENABLED": "0"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    client, parent, trials = sweep_runs(f"sqlite:///{db}")
    assert len(trials) == 6 and all(t.info.status == "FINISHED" for t in trials)
    assert sorted(t.data.tags["round"] for t in trials) == ["1"] * 3 + ["2"] * 3
    for t in trials:
        assert len(client.get_metric_history(t.info.run_id, "val_loss")) == 2
    assert len(list((tmp_path / "sweep").glob("*/result.json"))) == 6
