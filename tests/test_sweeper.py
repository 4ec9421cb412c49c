"""End-to-end ``python -m pipeline -m`` sweeps in a temporary directory with a temporary store."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from pipeline.search.space import parse
from pipeline.sweep.files import read_space

pytestmark = pytest.mark.slow
APPS = Path(__file__).parent / "apps"
SMALL = ["trainer.epochs=2", "model.width=tag(log, int(interval(8, 32)))", "hydra.sweeper.n_trials=8",
         "hydra.sweeper.rounds=2"]


def run(cwd: Path, *args: str, module: str = "pipeline", timeout: float = 600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", module, *args] if module else [sys.executable, *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "HYDRA_FULL_ERROR": "0"})


def sweep(tmp: Path, *overrides: str, store: Path | None = None) -> tuple[subprocess.CompletedProcess, Path, str]:
    sweep_dir = tmp / "sweep"
    uri = f"sqlite:///{store or tmp / 'mlflow.db'}"
    proc = run(tmp, "-m", f"hydra.sweep.dir={sweep_dir}", f"tracking.uri={uri}", *overrides)
    return proc, sweep_dir, uri


def runs_by_parent(uri: str) -> tuple[list, dict]:
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("pipeline")
    runs = client.search_runs([exp.experiment_id], max_results=5000)
    children: dict[str, list] = {}
    for r in runs:
        children.setdefault(r.data.tags.get("mlflow.parentRunId"), []).append(r)
    return runs, children


@pytest.fixture
def store(tmp_path: Path, mlflow_template: Path) -> Path:
    db = tmp_path / "mlflow.db"
    shutil.copy(mlflow_template, db)
    return db


def test_basic_sweep_lineage_files_and_reproduction(tmp_path: Path, store: Path) -> None:
    proc, sweep_dir, uri = sweep(tmp_path, *SMALL, store=store)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # MLflow: one parent, 8 trials nested under it, tagged with round and sampler
    runs, children = runs_by_parent(uri)
    (parent,) = children[None]
    trials = children[parent.info.run_id]
    assert len(runs) == 9 and len(trials) == 8
    assert sorted(t.data.tags["round"] for t in trials) == ["1"] * 4 + ["2"] * 4
    assert {t.data.tags["sampler"] for t in trials} == {"gp"}
    assert sorted(t.info.run_name for t in trials)[:2] == ["r1-t00", "r1-t01"]
    assert all(t.info.status == "FINISHED" for t in runs)
    client = MlflowClient(tracking_uri=uri)
    assert [m.step for m in client.get_metric_history(parent.info.run_id, "best_value")] == [1, 2]
    highs = client.get_metric_history(parent.info.run_id, "zoom/optimizer.lr/high")
    assert [m.step for m in highs] == [1, 2] and highs[0].value == 1.0 and highs[1].value < 1.0
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "zoom")} == {
        "zoom/round_1.yaml", "zoom/round_2.yaml"}
    assert "optimizer.lr" in parent.data.tags["mlflow.note.content"]
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "plots")} == {
        "plots/zoom.png", "plots/samplers.png", "plots/best_trials.png"}
    assert "Top trials" in proc.stdout and f"#/experiments/{parent.info.experiment_id}/runs" in proc.stdout
    board = (sweep_dir / "leaderboard.csv").read_text().splitlines()
    assert len(board) == 9 and board[0].startswith("rank,objective,round,trial,")
    # files: job dirs with result files, zoomed spaces, results, best config
    for job in range(8):
        result = yaml.safe_load((sweep_dir / str(job) / "result.json").read_text())
        assert result["status"] == "completed"
    assert (sweep_dir / "multirun.yaml").is_file()
    spaces = [parse(read_space(sweep_dir / "zoom" / f"round_{r}.yaml")) for r in (1, 2, 3)]
    lr = [s.dim("optimizer.lr") for s in spaces]
    assert lr[0].low == 1e-4 and lr[0].high == 1
    assert lr[2].high / lr[2].low < lr[0].high / lr[0].low  # narrowed
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["direction"] == "minimize" and results["metric"] == "val_loss"
    assert results["trials"] == 8 and results["failed"] == 0 and len(results["rounds"]) == 2
    assert results["scales"]["optimizer.lr"] == "log" and results["scales"]["optimizer.momentum"] == "log1m"
    assert set(results["best_held_out"]) == {"test_acc", "test_loss", "note"}
    assert results["best_value"] == min(t.data.metrics["val_loss"] for t in trials)
    assert len(yaml.safe_load((sweep_dir / "trials.yaml").read_text())) == 8
    best_cfg = yaml.safe_load((sweep_dir / "best.yaml").read_text())
    assert best_cfg["optimizer"]["lr"] == pytest.approx(results["best_params"]["optimizer.lr"])
    assert "Held-out test of that trial" in proc.stdout and "Reproduce: python -m pipeline" in proc.stdout
    # the reproduce command gives the same objective (same config and seed, same metrics)
    command = shlex.split(results["reproduce"])
    assert command[:3] == ["python", "-m", "pipeline"]
    again = run(tmp_path, *command[3:])
    assert again.returncode == 0, again.stderr[-2000:]
    value = float(re.search(r"val_loss=(\S+) \(minimize\)", again.stdout).group(1))
    assert value == pytest.approx(results["best_value"], rel=1e-5)
    # a zoomed space re-runs from its file, and the zoom stage runs on its own
    dry = run(tmp_path, "-m", f"--config-dir={sweep_dir}", "+zoom=round_3", "hydra.sweeper.dry_run=true")
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert f"optimizer.lr: {lr[2].expression()}" in dry.stdout
    before = {p: p.read_bytes() for p in sweep_dir.rglob("*") if p.is_file()}
    alone = run(tmp_path, str(sweep_dir), "--out", str(tmp_path / "mine" / "zoom" / "next.yaml"),
                module="pipeline.zoom")
    assert alone.returncode == 0, alone.stderr
    assert {p: p.read_bytes() for p in sweep_dir.rglob("*") if p.is_file()} == before  # only read
    assert parse(read_space(tmp_path / "mine" / "zoom" / "next.yaml")).dims == spaces[2].dims
    assert f"optimizer.lr: '{lr[2].expression()}'" in alone.stdout


def test_joblib_launcher_keeps_lineage(tmp_path: Path, store: Path) -> None:
    proc, sweep_dir, uri = sweep(tmp_path, *SMALL, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", store=store)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs, children = runs_by_parent(uri)
    (parent,) = children[None]
    trials = children[parent.info.run_id]
    assert len(trials) == 8 and all(t.info.status == "FINISHED" for t in trials)
    client = MlflowClient(tracking_uri=uri)
    for t in trials:
        assert len(client.get_metric_history(t.info.run_id, "val_loss")) == 2
    assert sorted({t.data.tags["round"] for t in trials}) == ["1", "2"]


def test_crossed_values_get_their_own_searches(tmp_path: Path, store: Path) -> None:
    proc, sweep_dir, uri = sweep(tmp_path, "trainer.epochs=2", "model.width=16", "hydra.sweeper.n_trials=6",
                                 "hydra.sweeper.rounds=2", "normalization=batch_norm,none", store=store)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs, children = runs_by_parent(uri)
    (parent,) = children[None]
    combos = children[parent.info.run_id]
    assert sorted(c.data.tags["combination"] for c in combos) == ["normalization=batch_norm",
                                                                   "normalization=none"]
    for combo in combos:
        trials = children[combo.info.run_id]
        assert len(trials) == 6
        expected = combo.data.tags["combination"].split("=")[1]
        assert {t.data.tags["normalization"] for t in trials} == {expected}
    summary = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert [c["directory"] for c in summary["combinations"]] == ["combo_0", "combo_1"]
    assert summary["best_value"] == min(c["best_value"] for c in summary["combinations"])
    for i in (0, 1):
        assert (sweep_dir / f"combo_{i}" / "zoom" / "round_2.yaml").is_file()
        assert yaml.safe_load((sweep_dir / f"combo_{i}" / "optimization_results.yaml").read_text())["trials"] == 6
    assert len(list(sweep_dir.glob("combo_*/*/result.json"))) == 12


def test_dry_run_launches_nothing(tmp_path: Path) -> None:
    proc, sweep_dir, _ = sweep(tmp_path, "hydra.sweeper.dry_run=true", "normalization=batch_norm,none")
    assert proc.returncode == 0, proc.stderr
    # this app's default: rungs of 2, 7 and 20 epochs, 112 configurations for the 960 epochs of 48 full trials
    assert ("Dry run: 2 search(es) x 3 rungs (2 epochs: 72 new; 7 epochs: 24 new + 24 promoted; 20 epochs: 16 new "
            "+ 16 promoted) = 112 configurations, 960 epochs in all (n_trials binds)") in proc.stdout
    assert "(each search), 224 in all" in proc.stdout
    assert "optimizer.lr: interval(0.0001, 1.0)  [log scale]" in proc.stdout
    assert "optimizer.momentum: tag(log1m, interval(0.5, 0.999))  [log1m scale]" in proc.stdout
    assert not sweep_dir.exists() and not (tmp_path / "mlflow.db").exists()


def test_diverging_trials_are_failed_not_fatal(tmp_path: Path, store: Path) -> None:
    # sampler=log_random: its seed-0 draws include learning rates that diverge (the subject here)
    proc, sweep_dir, uri = sweep(tmp_path, "trainer.epochs=3", "model.width=16", "normalization=none",
                                 "sampler=log_random",
                                 "optimizer.lr=tag(log, interval(1e-2, 1e6))", "hydra.sweeper.n_trials=6",
                                 "hydra.sweeper.rounds=1", "hydra.sweeper.max_failure_rate=1.0",
                                 store=store)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert 0 < results["failed"] < 6
    runs, children = runs_by_parent(uri)
    failed = [r for r in runs if r.info.status == "FAILED"]
    assert len(failed) == results["failed"]
    assert all(r.data.tags["failure_reason"] == "non-finite loss" for r in failed)
    rows = yaml.safe_load((sweep_dir / "trials.yaml").read_text())
    assert sum("TrainingDiverged" in (r["error"] or "") for r in rows) == results["failed"]
    assert "failed: TrainingDiverged" in proc.stderr + proc.stdout
    # trials.yaml names the MLflow run of failed trials too
    assert {r["mlflow_run_id"] for r in rows if r["error"]} == {r.info.run_id for r in failed}


def test_timed_out_trials_fail_and_the_sweep_carries_on(tmp_path: Path, store: Path) -> None:
    proc, sweep_dir, uri = sweep(tmp_path, "trainer.epochs=1000", "model.width=16", "trainer.timeout_s=0.2",
                                 "hydra.sweeper.n_trials=4", "hydra.sweeper.rounds=2",
                                 "hydra.sweeper.fidelity.key=null", "hydra.sweeper.max_failure_rate=1.0", store=store)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = yaml.safe_load((sweep_dir / "trials.yaml").read_text())
    assert len(rows) == 4 and all("TrialTimeout" in r["error"] for r in rows)
    runs, children = runs_by_parent(uri)
    (parent,) = children[None]
    assert parent.info.status == "FINISHED"
    assert [r.data.tags["failure_reason"] for r in children[parent.info.run_id]] == ["timeout"] * 4


def test_too_many_failures_stop_the_sweep_with_results_kept(tmp_path: Path, store: Path) -> None:
    proc, sweep_dir, uri = sweep(tmp_path, "trainer.epochs=2", "model.width=16", "normalization=none",
                                 "optimizer.lr=tag(log, interval(1e5, 1e6))", "hydra.sweeper.n_trials=9",
                                 "hydra.sweeper.rounds=3",
                                 store=store)
    assert proc.returncode == 3
    assert "sweep stopped: 3 of 3 trials failed, more than max_failure_rate=0.5" in proc.stderr
    assert "Traceback" not in proc.stderr
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["failed"] == 3 and len(results["rounds"]) == 1
    runs, children = runs_by_parent(uri)
    (parent,) = children[None]
    assert parent.info.status == "FAILED" and "max_failure_rate" in parent.data.tags["failure_reason"]


def test_params_can_be_added_from_the_command_line(tmp_path: Path) -> None:
    proc, _, _ = sweep(tmp_path, "hydra.sweeper.dry_run=true", "+hydra.sweeper.params.trainer.epochs='choice(1, 2)'",
                       "hydra.sweeper.fidelity.key=null")  # the epochs searched, not stepped through in rungs
    assert proc.returncode == 0, proc.stderr
    assert "trainer.epochs: choice(1, 2)" in proc.stdout


def test_foreign_app_sphere(tmp_path: Path) -> None:
    """The zoom sweeper serves any Hydra app returning a number; it falls back to its own
    direction and sampler when the app has no objective/sampler."""
    app = tmp_path / "app"
    shutil.copytree(APPS / "sphere", app)
    proc = run(app, "sphere.py", "-m", "hydra.sweep.dir=out", module="")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = yaml.safe_load((app / "out" / "optimization_results.yaml").read_text())
    assert results["direction"] == "minimize" and results["sampler"] == "GPSampler"
    assert results["best_value"] <= 1.0 and results["trials"] == 24
    x_space = [parse(r["space"]).dim("x") for r in results["rounds"]]
    assert len(x_space[-1].values) < len(x_space[0].values) == 22
    assert results["reproduce"].startswith("python ") and "sphere.py" in results["reproduce"]


def test_plugins_are_discovered_from_another_directory(tmp_path: Path) -> None:
    proc = run(tmp_path, "--info", "plugins")
    assert proc.returncode == 0, proc.stderr
    assert "ZoomSweeper" in proc.stdout and "JoblibLauncher" in proc.stdout and "BasicLauncher" in proc.stdout


def test_trust_zoom_through_hydra(tmp_path: Path) -> None:
    """zoom=trust from the command line: recorded in the results, each round keeps half the
    values around the best, and the dry run names the policy."""
    app = tmp_path / "app"
    shutil.copytree(APPS / "sphere", app)
    dry = run(app, "sphere.py", "-m", "hydra.sweep.dir=dry", "hydra.sweeper.zoom=trust", "hydra.sweeper.shrink=0.5",
              "hydra.sweeper.dry_run=true",
              module="")
    assert dry.returncode == 0 and "trust region of 0.5 x the width around the best" in dry.stdout
    proc = run(app, "sphere.py", "-m", "hydra.sweep.dir=out", "hydra.sweeper.zoom=trust", "hydra.sweeper.shrink=0.5",
               module="")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = yaml.safe_load((app / "out" / "optimization_results.yaml").read_text())
    assert results["settings"]["zoom"] == "trust" and results["settings"]["shrink"] == 0.5
    sizes = [len(parse(r["space"]).dim("x").values) for r in results["rounds"]]
    assert sizes == [22, 11, 6]
    last = parse(results["rounds"][-1]["space"]).dim("x").values  # centred on the incumbent
    assert min(last) <= results["best_params"]["x"] <= max(last)
