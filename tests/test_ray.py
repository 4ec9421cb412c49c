"""Trials on Ray through Hydra's own hydra-ray-launcher (extra `ray`), lineage intact."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import sweep_runs
from tests.test_fidelity import FIDELITY_SWEEP, check_continued

pytestmark = pytest.mark.slow
pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="install the `ray` extra: pip install -e .[ray]")


def test_sweep_on_a_local_ray_instance(tmp_path: Path) -> None:
    """A fidelity sweep (one Ray start covers both): trials nested under the sweep's run, and
    promoted trials on Ray's workers continue the checkpoint in their first job directory."""
    db = tmp_path / "mlflow.db"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "-m", "hydra/launcher=ray", f"hydra.sweep.dir={tmp_path / 'sweep'}",
         f"tracking.uri=sqlite:///{db}", *FIDELITY_SWEEP, "+hydra.launcher.ray.init.num_cpus=2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900,
        env={**os.environ, "HYDRA_FULL_ERROR": "0", "RAY_USAGE_STATS_ENABLED": "0"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    client, parent, trials = sweep_runs(f"sqlite:///{db}")
    assert len(trials) == 10 and all(t.info.status == "FINISHED" for t in trials)  # one per configuration
    assert sorted({t.data.tags["rung"] for t in trials}) == ["1", "2", "3"]
    assert len(list((tmp_path / "sweep").glob("*/result.json"))) == 7 + 4 + 2  # one job per rung of each
    # what the trials print goes to their job logs, not through Ray to the sweep's terminal
    assert "digits/batch_norm/sgd |" not in proc.stdout + proc.stderr
    assert "digits/batch_norm/sgd |" in (tmp_path / "sweep" / "0" / "__main__.log").read_text()
    check_continued(tmp_path / "sweep", f"sqlite:///{db}")
