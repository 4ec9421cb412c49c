"""Killing a real sweep mid-round and resuming it: nothing finished runs twice, job numbers do
not restart, runs the dead process left RUNNING become KILLED, and no MLflow run is duplicated."""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow
FAULTS = str(Path(__file__).parent / "apps" / "faults")  # on PYTHONPATH: PIPELINE_PAUSE_AT pauses a trial
ARGS = ["hydra.sweeper.n_trials=12", "hydra.sweeper.rounds=2", "hydra.sweeper.fidelity.key=null", "trainer.epochs=40",
        "model.width=64"]


def _cmd(tmp: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", "-m", f"hydra.sweep.dir={tmp / 'sweep'}",
            f"tracking.uri=sqlite:///{tmp / 'mlflow.db'}", *ARGS, *extra]


def _runs(tmp: Path) -> list:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}")
    exp = client.get_experiment_by_name("pipeline")
    return client.search_runs([exp.experiment_id], max_results=1000)


def test_kill_mid_round_then_resume(tmp_path: Path, mlflow_template: Path) -> None:
    shutil.copy(mlflow_template, tmp_path / "mlflow.db")
    sweep = tmp_path / "sweep"
    # job 2 pauses after its 5th epoch (its MLflow run RUNNING): killing the sweep there is not a
    # race against a trial that might end between looking and killing
    env = {**os.environ, "PYTHONPATH": FAULTS, "PIPELINE_PAUSE_AT": "2:5:120"}
    proc = subprocess.Popen(_cmd(tmp_path), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env=env)
    deadline = time.monotonic() + 120
    try:
        while not (sweep / "2" / "paused").exists():
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("the sweep never paused in its third trial")
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    left_running = {r.info.run_id for r in _runs(tmp_path) if r.info.status == "RUNNING" and "job" in r.data.tags}
    finished_before = {p.parent.name: json.loads(p.read_text())["started"] for p in sweep.glob("*/result.json")}
    assert 2 <= len(finished_before) < 12
    state = json.loads((sweep / "sweep_state.json").read_text())
    assert state["status"] == "running" and "hydra.sweeper.resume=true" in state["resume_command"]

    # a new sweep into the same directory is refused (it would overwrite job directories)
    again = subprocess.run(_cmd(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "already holds a sweep" in again.stderr
    # resuming with other overrides is refused, naming the command to use
    other = subprocess.run(_cmd(tmp_path, "hydra.sweeper.resume=true", "seed=3"), cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert other.returncode == 2 and "resume with: python -m pipeline" in other.stderr

    resumed = subprocess.run(_cmd(tmp_path, "hydra.sweeper.resume=true"), cwd=tmp_path, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"round 1: {len(finished_before)} trials already finished" in resumed.stdout + resumed.stderr

    # finished trials were not run again; every job ran exactly once more or less
    for name, started in finished_before.items():
        assert json.loads((sweep / name / "result.json").read_text())["started"] == started
    assert sorted(int(p.parent.name) for p in sweep.glob("*/result.json")) == list(range(12))
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["trials"] == 12 and results["failed"] == 0
    assert json.loads((sweep / "sweep_state.json").read_text())["status"] == "finished"

    runs = _runs(tmp_path)
    statuses = collections.Counter((r.data.tags.get("job"), r.info.status) for r in runs)
    assert not [k for k in statuses if k[1] == "RUNNING"]
    for job in range(12):
        assert statuses[(str(job), "FINISHED")] == 1, statuses  # no duplicated run
    killed = [r for r in runs if r.info.status == "KILLED"]
    assert {r.info.run_id for r in killed} == left_running and len(killed) >= 1  # job 2's, at least
    assert all(r.data.tags["failure_reason"].startswith("interrupted") for r in killed)
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "FINISHED"
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert [m.step for m in client.get_metric_history(parent.info.run_id, "best_value")] == [1, 2]

    # a fresh, uninterrupted sweep gives the same trials and values (resume changed nothing)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy(mlflow_template, fresh / "mlflow.db")
    clean = subprocess.run(_cmd(fresh), cwd=fresh, capture_output=True, text=True, timeout=600)
    assert clean.returncode == 0, clean.stderr[-2000:]
    a = yaml.safe_load((sweep / "trials.yaml").read_text())
    b = yaml.safe_load((fresh / "sweep" / "trials.yaml").read_text())
    assert [(t["params"], t["value"]) for t in a] == [(t["params"], t["value"]) for t in b]
