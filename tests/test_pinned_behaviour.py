"""Sweeps whose results are pinned: a change to the sweeper that alters them is a change of
behaviour, to be made on purpose (re-record with ``PIN_RECORD=1`` in the same commit, and say why).

The foreign app (tests/apps/sphere) is pure arithmetic, so its trials, values, zoomed spaces and
result files are pinned exactly; a policy sweep, a crossed sweep, and the policy sweep killed
mid-round then resumed (which must equal the uninterrupted one). This app's float32 results depend
on the BLAS kernel, so for it the MLflow run tree is pinned: run names, nesting, statuses, tags,
param keys (all of the sweep's own params), metric keys and their steps.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.slow
APPS = Path(__file__).parent / "apps"
PINNED = Path(__file__).parent / "data" / "pinned"
RECORD = os.environ.get("PIN_RECORD") == "1"

FAST = ["hydra.sweeper.importance=false", "hydra.sweeper.plots=false"]  # not part of the pinned files
POLICY = [*FAST, "hydra.sweeper.rounds=3", "hydra.sweeper.trials_per_round=8", "hydra.sweeper.zoom=span",
          "hydra.sweeper.top_k=null", "hydra.sweeper.top_fraction=0.25", "hydra.sweeper.margin=0.1",
          "hydra.sweeper.shrink=0.5",
          "hydra.sweeper.max_failure_rate=1.0",
          "hydra.sweeper.sampler._target_=plugins.samplers.random.RandomSampler", "hydra.sweeper.sampler.seed=3",
          "x=interval(-5.0, 5.0)", "y=choice(-5, 0, 5, oops)"]
CROSSED = [*FAST, "hydra.sweeper.rounds=2", "hydra.sweeper.trials_per_round=5", "hydra.sweeper.zoom=trust",
           "hydra.sweeper.shrink=0.5", "hydra.sweeper.top_k=2", "hydra.sweeper.sampler.seed=1",
           "x=range(-5.5, 5.5, step=0.5)", "y=-5,0,5"]
APP = ["trainer.epochs=1", "model.width=tag(log, int(interval(8, 32)))", "hydra.sweeper.n_trials=6",
       "hydra.sweeper.rounds=2", "normalization=batch_norm,none", "hydra.sweeper.final_seeds=1",
       "hydra.sweeper.final_top=1", "hydra.sweeper.plots=false"]  # figures are artifacts: not in the tree
# run tags whose values differ from run to run (ids, paths, times, floats from BLAS)
VOLATILE_TAGS = {"mlflow.parentRunId", "mlflow.user", "mlflow.source.name", "mlflow.source.type",
                 "mlflow.runName", "best_run_id", "best_value", "sweep_dir", "mlflow.note.content",
                 "best_combination", "sweep", "model_uri"}  # sweep: the last two parts of a temporary directory


def _sphere(tmp: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    app = tmp / "app"
    if not app.exists():
        shutil.copytree(APPS / "sphere", app)
    return subprocess.run([sys.executable, "sphere.py", "-m", "hydra.sweep.dir=out", *args], cwd=app,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HYDRA_FULL_ERROR": "0", **(env or {})})


def _scrub(value: Any, root: str) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v, root) for k, v in value.items() if k not in ("job_dir", "mlflow_run_id", "run_id")}
    if isinstance(value, list):
        return [_scrub(v, root) for v in value]
    if isinstance(value, str):
        return value.replace(root, "<app>")
    return value


def snapshot(sweep_dir: Path) -> dict[str, Any]:
    """What a sweep leaves that must not change: trials, zoomed spaces, result files (paths and
    run ids removed)."""
    root = str(sweep_dir.parent)
    out: dict[str, Any] = {}
    for path in sorted(sweep_dir.rglob("trials.yaml")):
        rows = yaml.safe_load(path.read_text())
        out[str(path.relative_to(sweep_dir))] = [
            {k: r.get(k) for k in ("round", "index", "params", "value", "error")} for r in rows]
    for path in sorted(sweep_dir.rglob("zoom/round_*.yaml")):
        out[str(path.relative_to(sweep_dir))] = [line for line in path.read_text().splitlines()
                                                 if not line.startswith("#")]
    for path in sorted(sweep_dir.rglob("optimization_results.yaml")):
        out[str(path.relative_to(sweep_dir))] = _scrub(yaml.safe_load(path.read_text()), root)
    return out


def run_tree(uri: str) -> dict[str, Any]:
    """Every run of the store by name: parent's name, status, tags, params and metric steps."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("pipeline")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    names = {r.info.run_id: r.info.run_name for r in runs}
    tree = {}
    for r in runs:
        parent = names.get(r.data.tags.get("mlflow.parentRunId"))
        sweep_level = parent is None or r.data.tags.get("combination")
        tree[r.info.run_name] = {
            "parent": parent,
            "status": r.info.status,
            "tags": {k: "*" if k in VOLATILE_TAGS else v for k, v in sorted(r.data.tags.items())},
            "params": dict(sorted(r.data.params.items())) if sweep_level else sorted(r.data.params),
            "metrics": {k: [m.step for m in client.get_metric_history(r.info.run_id, k)]
                        for k in sorted(r.data.metrics)},
        }
    return dict(sorted(tree.items()))


def check(name: str, actual: dict[str, Any]) -> None:
    path = PINNED / f"{name}.json"
    if RECORD:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(actual, indent=1, sort_keys=True) + "\n")
    expected = json.loads(path.read_text())
    assert json.loads(json.dumps(actual)) == expected


def test_policy_sweep_is_pinned(tmp_path: Path) -> None:
    proc = _sphere(tmp_path, *POLICY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check("sphere_policy", snapshot(tmp_path / "app" / "out"))


def test_crossed_sweep_is_pinned(tmp_path: Path) -> None:
    proc = _sphere(tmp_path, *CROSSED)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check("sphere_crossed", snapshot(tmp_path / "app" / "out"))


def test_killed_then_resumed_sweep_equals_the_uninterrupted_one(tmp_path: Path) -> None:
    killed = _sphere(tmp_path, *POLICY, env={"SPHERE_KILL_AT": "11"})
    assert killed.returncode == -9, killed.stderr[-3000:]
    out = tmp_path / "app" / "out"
    assert len(list(out.glob("*/result.json"))) == 11
    resumed = _sphere(tmp_path, *POLICY, "hydra.sweeper.resume=true")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "round 2: 3 trials already finished, 5 to run" in resumed.stdout + resumed.stderr
    if RECORD:
        return  # the policy sweep records the expected files
    check("sphere_policy", snapshot(out))


def test_this_apps_mlflow_run_tree_is_pinned(tmp_path: Path, mlflow_template: Path) -> None:
    shutil.copy(mlflow_template, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.run([sys.executable, "-m", "pipeline", "-m", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                           f"tracking.uri={uri}", *APP], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check("app_run_tree", run_tree(uri))
