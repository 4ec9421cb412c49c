"""The Hydra side of the zoom sweeper: what a plain run of any Hydra app pays for it, and the
sweeper's own MLflow lineage for a foreign app (one that logs nothing itself)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

APPS = Path(__file__).parent / "apps"


def test_a_single_run_imports_none_of_the_sweepers_underscore_modules(tmp_path: Path) -> None:
    """Hydra imports every non-underscore module under hydra_plugins at start-up: those must stay
    the ConfigStore entry and the Sweeper class; the rest loads only when a sweep starts."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "pipeline", "trainer.epochs=1",
                           "tracking.enabled=false", f"hydra.run.dir={tmp_path / 'run'}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # (Hydra loads the plugin modules themselves outside the import statement, so they are not listed)
    modules = set(re.findall(r"\|\s+([\w.]+)\s*$", proc.stderr, flags=re.MULTILINE))
    assert "pipeline.train.stage" in modules
    sweeper_side = sorted(m for m in modules if m.startswith("hydra_plugins.zoom_sweeper._")
                          or m in ("pipeline.sweep.runner", "pipeline.sweep.lineage", "pipeline.sweep.plan",
                                   "pipeline.sweep.settings"))
    assert sweeper_side == []


@pytest.mark.slow
def test_a_foreign_app_gets_the_sweepers_own_mlflow_runs(tmp_path: Path, mlflow_template: Path) -> None:
    """Without trial_keys the sweeper logs the parent run and one child run per trial itself."""
    from mlflow.tracking import MlflowClient

    app = tmp_path / "app"
    shutil.copytree(APPS / "sphere", app)
    shutil.copy(mlflow_template, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.run([sys.executable, "sphere.py", "-m", "hydra.sweep.dir=out",
                           f"hydra.sweeper.tracking.uri={uri}", "hydra.sweeper.tracking.experiment=sphere",
                           "hydra.sweeper.rounds=2", "hydra.sweeper.metric=distance", "y=choice(0, 5, oops)",
                           "hydra.sweeper.plots=false"],
                          cwd=app, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HYDRA_FULL_ERROR": "0"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("sphere").experiment_id], max_results=100)
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    rows = yaml.safe_load((app / "out" / "trials.yaml").read_text())
    assert len(trials) == len(rows) == 16 and parent.info.status == "FINISHED"
    by_job = {int(r.data.tags["job"]): r for r in trials}
    for job, row in enumerate(rows):
        run = by_job[job]
        assert run.info.run_name == f"r{row['round']}-t{row['index']:02d}"
        assert run.data.tags["round"] == str(row["round"])
        assert run.data.params == {k: str(v) for k, v in row["params"].items()}
        if row["value"] is None:
            assert run.info.status == "FAILED" and "ValueError" in run.data.tags["failure_reason"]
        else:
            assert run.info.status == "FINISHED" and run.data.metrics["distance"] == row["value"]
    assert parent.data.params["sweeper.metric"] == "distance"
    assert [m.step for m in client.get_metric_history(parent.info.run_id, "best_value")] == [1, 2]


def test_an_in_process_sweep_through_hydras_test_fixtures(hydra_sweep_runner: Any, hydra_restore_singletons: Any,
                                                          tmp_path: Path) -> None:
    """Hydra's own multirun, in this process, on the foreign app's config: the same files as the
    pinned subprocess sweep."""
    from tests.test_pinned_behaviour import PINNED, POLICY, snapshot

    def sphere(cfg: Any) -> float:
        return float(cfg.x) ** 2 + float(cfg.y) ** 2

    sweep = hydra_sweep_runner(calling_file=str(APPS / "sphere" / "sphere.py"), calling_module=None,
                               task_function=sphere, config_path=".", config_name="sphere",
                               overrides=[*POLICY, "hydra.job.chdir=false"], temp_dir=tmp_path / "out")
    with sweep:
        assert sweep.returns["best_value"] == min(r["value"] for r in
                                                  yaml.safe_load((tmp_path / "out" / "trials.yaml").read_text())
                                                  if r["value"] is not None)
        got = snapshot(tmp_path / "out")
    expected = json.loads((PINNED / "sphere_policy.json").read_text())
    got = json.loads(json.dumps(got))
    reproduce = got["optimization_results.yaml"].pop("reproduce")  # names pytest as the program here
    assert reproduce.endswith(expected["optimization_results.yaml"].pop("reproduce").removeprefix("python sphere.py"))
    assert got == expected
