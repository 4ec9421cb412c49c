"""Coarse to fine in fidelity: the rung arithmetic (hand-computed), the settings' one-line
errors, and a real Hydra sweep whose promoted trials continue their checkpoint and MLflow run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from pipeline.errors import ConfigError
from pipeline.search.fidelity import Fidelity, plan
from pipeline.sweep.settings import SweepSettings
from pipeline.train import checkpoint
from tests.conftest import trial_values

EPOCHS = Fidelity("trainer.epochs", 2, 20, 3, "trainer.resume_from")


def test_levels_rise_by_eta_to_max() -> None:
    assert EPOCHS.levels() == (2, 7, 20)  # 20/9 = 2.2 -> 2, 20/3 = 6.7 -> 7
    assert Fidelity("e", 1, 81, 3).levels() == (1, 3, 9, 27, 81)
    assert Fidelity("e", 3, 20, 3).levels() == (7, 20)  # log3(20/3) = 1.7: two rungs
    assert Fidelity("e", 1.0, 16.0, 2).levels() == (1.0, 2.0, 4.0, 8.0, 16.0)


def test_n_trials_counts_configurations_started() -> None:
    rungs = plan(EPOCHS, 48, None)
    # rung 0: 32 new at 2 epochs; 32 // 3 = 10 promoted + 10 new at 7; 20 // 3 = 6 + 6 at 20
    assert (rungs.new, rungs.promoted, rungs.sizes) == ((32, 10, 6), (0, 10, 6), (32, 20, 12))
    assert rungs.started == 48 and rungs.binds == "n_trials"
    # continued trials pay only the epochs they add: 32*2 + 10*(7-2) + 10*7 + 6*(20-7) + 6*20
    assert rungs.spent == 64 + 50 + 70 + 78 + 120 == 382
    retrain = plan(Fidelity("trainer.epochs", 2, 20, 3), 48, None)  # no resume_key: from scratch
    assert retrain.spent == 32 * 2 + 20 * 7 + 12 * 20 == 444


def test_budget_caps_the_epochs_and_the_binding_limit_is_named() -> None:
    rungs = plan(EPOCHS, None, 320)
    # 26 in rung 0: 52 + 8*5 + 8*7 + 5*13 + 5*20 = 313; 27 would spend 360
    assert (rungs.new, rungs.promoted, rungs.spent, rungs.binds) == ((26, 8, 5), (0, 8, 5), 313, "budget")
    assert plan(EPOCHS, 48, 320).binds == "budget" and plan(EPOCHS, 30, 960).binds == "n_trials"
    assert "39 configurations, 313 epochs in all (budget binds)" in rungs.describe()
    with pytest.raises(ConfigError, match=r"hydra.sweeper.budget=10: too small for one configuration"):
        plan(EPOCHS, None, 10)  # 2 + 5 + 7 + 13 + 20 = 47 epochs at the least


@pytest.mark.parametrize(("raw", "message"), [
    ({"budget": 100}, "hydra.sweeper.budget=100: caps the fidelity spent; set hydra.sweeper.fidelity.key"),
    ({"fidelity": {"key": "trainer.epochs", "min": 2, "max": 20}, "rounds": 3},
     "hydra.sweeper.rounds=3: the rounds of a fidelity sweep are its rungs"),
    ({"fidelity": {"key": "trainer.epochs", "min": 2, "max": 3}, "budget": 2},
     "hydra.sweeper.budget=2: too small for one configuration"),
    ({"fidelity": {"key": "trainer.epochs", "min": 2, "max": 20, "eta": 1}}, "hydra.sweeper.fidelity.eta=1"),
    ({"fidelity": {"key": "trainer.epochs", "max": 20}}, "hydra.sweeper.fidelity.min=None: must be a positive"),
    ({"fidelity": {"key": "e", "min": 1, "max": 9, "rungs": 2}}, "hydra.sweeper.fidelity.rungs=2: not a fidelity"),
])
def test_bad_fidelity_settings_are_one_line_errors(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        SweepSettings.from_config(**raw)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("epochs", [1, 2, 5])
def test_one_rung_runs_plain_rounds(epochs: int) -> None:
    """max/min below eta (this app with trainer.epochs=5: 5/2 < 3) leaves nothing to climb: plain
    rounds by n_trials, rounds settings allowed, a budget caps the trials at budget // max."""
    fid = {"key": "trainer.epochs", "min": 2, "max": epochs, "eta": 3, "resume_key": "trainer.resume_from"}
    s = SweepSettings.from_config(n_trials=20, fidelity=fid)
    assert (s.fidelity.on, s.rungs, s.schedule.sizes, s.schedule.fidelities) == (False, None, (6, 7, 7), ())
    assert s.flat is not None and f"max/min = {epochs}/2 is below eta=3" in s.flat
    assert SweepSettings.from_config(n_trials=20, rounds=2, fidelity=fid).schedule.sizes == (10, 10)
    assert SweepSettings.from_config(budget=10 * epochs, fidelity=fid).schedule.total == 10
    assert SweepSettings.from_config(n_trials=4, budget=1000, fidelity=fid).schedule.total == 4


def test_settings_build_the_rung_schedule() -> None:
    s = SweepSettings.from_config(n_trials=14, fidelity={"key": "epochs", "min": 1, "max": 9, "eta": 3})
    assert s.schedule.sizes == (9, 6, 4) and s.schedule.fidelities == (1, 3, 9) and s.schedule.promoted == (0, 3, 2)


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_fidelity_sweep_continues_promoted_trials_in_one_run(tmp_path: Path, mlflow_template: Path) -> None:
    """A real sweep (3 rungs at 1, 3, 9 epochs): one MLflow run per configuration whose metric
    steps run on without a gap or a repeat across rungs, its rung tag the last rung it reached;
    the leaderboard ranks only the 9-epoch trials; and the best trial's value is exactly what
    training its configuration for 9 epochs in one go gives."""
    store = tmp_path / "mlflow.db"
    shutil.copy(mlflow_template, store)
    uri, sweep_dir = f"sqlite:///{store}", tmp_path / "sweep"
    small = ["model.width=16", "trainer.epochs=9", "hydra.sweeper.fidelity.key=trainer.epochs",
             "hydra.sweeper.fidelity.min=1", "hydra.sweeper.n_trials=10", "hydra.sweeper.importance=false",
             "hydra.sweeper.plots=false"]
    proc = subprocess.run([sys.executable, "-m", "pipeline", "-m", f"hydra.sweep.dir={sweep_dir}",
                           f"tracking.uri={uri}", *small], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = yaml.safe_load((sweep_dir / "trials.yaml").read_text())
    # n_trials=10 -> 7 new at 1 epoch; 2 promoted + 2 new at 3; 1 promoted + 1 new at 9
    assert [t["fidelity"] for t in trials] == [1] * 7 + [3] * 4 + [9] * 2
    assert sum("continues" in t for t in trials) == 3
    client = MlflowClient(tracking_uri=uri)
    parent = client.get_run(next(t for t in trials)["mlflow_run_id"]).data.tags["mlflow.parentRunId"]
    exp = client.get_experiment_by_name("pipeline").experiment_id
    runs = client.search_runs([exp], f"tags.mlflow.parentRunId = '{parent}'")
    assert len(runs) == 10 and all(r.info.status == "FINISHED" for r in runs)
    for r in runs:
        reached = int(r.data.metrics["epochs"])
        assert [m.step for m in client.get_metric_history(r.info.run_id, "val_loss")] == list(range(1, reached + 1))
        assert r.data.tags["rung"] == str({1: 1, 3: 2, 9: 3}[reached]) and "trainer.epochs" not in r.data.params
    board = (sweep_dir / "leaderboard.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in board[1:]] == ["1", "2"] + [""] * 8  # 10 configurations, 2 at 9 epochs
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    best = results["best_params"]
    again = subprocess.run([sys.executable, "-m", "pipeline", "model.width=16", "trainer.epochs=9",
                            "tracking.enabled=false", *(f"{k}={v}" for k, v in best.items())], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert f"val_loss={results['best_value']:.6g} (minimize)" in again.stdout, again.stdout


@pytest.mark.slow
def test_a_foreign_app_without_checkpoints_retrains_and_gets_one_run_per_configuration(
        tmp_path: Path, mlflow_template: Path) -> None:
    """Any Hydra app: the sphere keeps no checkpoint (no resume_key), so promoted trials retrain
    at the higher budget, which stays correct; the sweeper logs the runs itself and extends each
    configuration's run with the objective at the step of each fidelity it reached."""
    store = tmp_path / "mlflow.db"
    shutil.copy(mlflow_template, store)
    uri, sweep_dir = f"sqlite:///{store}", tmp_path / "sweep"
    app = ROOT / "tests" / "apps" / "sphere" / "sphere.py"
    settings = ["hydra.sweeper.rounds=null", "hydra.sweeper.trials_per_round=null", "hydra.sweeper.n_trials=14",
                "hydra.sweeper.top_k=null", "hydra.sweeper.fidelity.key=steps", "hydra.sweeper.fidelity.min=1",
                "hydra.sweeper.fidelity.max=9", "hydra.sweeper.importance=false", "hydra.sweeper.plots=false",
                f"hydra.sweeper.tracking.uri={uri}", "hydra.sweeper.tracking.experiment=sphere"]
    dry = subprocess.run([sys.executable, str(app), "-m", f"hydra.sweep.dir={tmp_path / 'dry'}", *settings,
                          "hydra.sweeper.dry_run=true"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert "retrained from scratch (no fidelity.resume_key)" in dry.stdout + dry.stderr
    proc = subprocess.run([sys.executable, str(app), "-m", f"hydra.sweep.dir={sweep_dir}", *settings], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = yaml.safe_load((sweep_dir / "trials.yaml").read_text())
    assert [t["fidelity"] for t in trials] == [1] * 9 + [3] * 6 + [9] * 4
    for t in trials:  # every value is the app's own at that budget: nothing carried over
        assert t["value"] == pytest.approx(float(t["params"]["x"]) ** 2 + float(t["params"]["y"]) ** 2
                                           + 1 / t["fidelity"])
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("sphere").experiment_id
    runs = [r for r in client.search_runs([exp]) if "trial" in r.data.tags]
    assert len(runs) == 9 + 3 + 2 and all(r.info.status == "FINISHED" for r in runs)  # configurations
    steps = sorted(tuple(m.step for m in client.get_metric_history(r.info.run_id, "objective")) for r in runs)
    # each run holds its configuration's rungs in order: 9 started at 1, 3 at 3, 2 at 9, 19 records
    assert all(h in {(1,), (1, 3), (1, 3, 9), (3,), (3, 9), (9,)} for h in steps) and sum(map(len, steps)) == 19
    assert [sum(h[0] == f for h in steps) for f in (1, 3, 9)] == [9, 3, 2]
    assert sum(len(h) - 1 for h in steps) == 3 + 2  # promotions: 3 into rung 2, 2 into rung 3
    assert "trial" not in [p for r in runs for p in r.data.params] and all("steps" not in r.data.params for r in runs)


@pytest.mark.slow
def test_a_sweep_killed_mid_rung_resumes_to_the_same_result(tmp_path: Path, mlflow_template: Path) -> None:
    """SIGKILL after epoch 2 of a trial promoted from 1 to 3 epochs (job 7), then resume: no
    finished trial trains again, the killed one continues from its checkpoint (its run logs
    each epoch once), and every trial's value equals an uninterrupted sweep's."""
    faults = str(ROOT / "tests" / "apps" / "faults")  # on PYTHONPATH: PIPELINE_KILL_AT kills at job:epoch
    small = ["model.width=16", "trainer.epochs=9", "hydra.sweeper.fidelity.key=trainer.epochs",
             "hydra.sweeper.fidelity.min=1", "hydra.sweeper.n_trials=10", "hydra.sweeper.importance=false",
             "hydra.sweeper.plots=false"]

    def sweep(name: str, *extra: str, kill: str = "") -> tuple[subprocess.CompletedProcess, Path, str]:
        store = tmp_path / f"{name}.db"
        if not store.exists():
            shutil.copy(mlflow_template, store)
        uri, sweep_dir = f"sqlite:///{store}", tmp_path / name
        env = {**os.environ, "PYTHONPATH": faults, "PIPELINE_KILL_AT": kill}
        proc = subprocess.run([sys.executable, "-m", "pipeline", "-m", f"hydra.sweep.dir={sweep_dir}",
                               f"tracking.uri={uri}", *small, *extra], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=600)
        return proc, sweep_dir, uri

    reference, ref_dir, _ = sweep("reference")
    assert reference.returncode == 0, reference.stderr[-3000:]
    killed, sweep_dir, uri = sweep("killed", kill="7:2")
    assert killed.returncode == -9 and not (sweep_dir / "7" / "result.json").exists()
    finished = {p.parent.name: p.stat().st_mtime_ns for p in sweep_dir.glob("*/result.json")}
    rung1 = yaml.safe_load((sweep_dir / "trials.yaml").read_text())
    assert len(finished) == len(rung1) == 7  # rung 1 done
    # job 7 continues rung 1's best, whose job directory keeps the checkpoint: killed after epoch 2
    home = Path(min(rung1, key=lambda t: t["value"])["job_dir"])
    assert checkpoint.load(checkpoint.path_in(home)).epoch == 2
    resumed, _, _ = sweep("killed", "hydra.sweeper.resume=true")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert {name: (sweep_dir / name / "result.json").stat().st_mtime_ns for name in finished} == finished
    assert trial_values(sweep_dir) == trial_values(ref_dir)
    client = MlflowClient(tracking_uri=uri)
    trial7 = next(t for t in yaml.safe_load((sweep_dir / "trials.yaml").read_text())
                  if t["job_dir"].endswith("/7"))
    history = client.get_metric_history(trial7["mlflow_run_id"], "val_loss")
    assert sorted(m.step for m in history) == [1, 2, 3]
    assert client.get_run(trial7["mlflow_run_id"]).info.status == "FINISHED"
    assert trial7["continues"] == f"r1-t{int(home.name):02d}" and checkpoint.load(checkpoint.path_in(home)).epoch == 3


FIDELITY_SWEEP = ["model.width=16", "trainer.epochs=9", "hydra.sweeper.fidelity.key=trainer.epochs",
                  "hydra.sweeper.fidelity.min=1", "hydra.sweeper.n_trials=10", "hydra.sweeper.importance=false",
                  "hydra.sweeper.plots=false"]


def check_continued(sweep_dir: Path, uri: str) -> None:
    """A fidelity sweep of ``FIDELITY_SWEEP`` (10 configurations): one MLflow run each, each epoch
    once, the checkpoint in the configuration's first job directory at the last fidelity reached."""
    trials = yaml.safe_load((sweep_dir / "trials.yaml").read_text())
    client = MlflowClient(tracking_uri=uri)
    assert len({t["mlflow_run_id"] for t in trials}) == 10
    named = {f"r{t['round']}-t{t['index']:02d}": t for t in trials}
    reached = {t.get("continues") or f"r{t['round']}-t{t['index']:02d}": t for t in trials}  # last record wins
    assert len(reached) == 10
    for name, last in reached.items():
        home = Path(named[name]["job_dir"])
        assert checkpoint.load(checkpoint.path_in(home)).epoch == last["fidelity"]
        steps = [m.step for m in client.get_metric_history(last["mlflow_run_id"], "val_loss")]
        assert sorted(steps) == list(range(1, last["fidelity"] + 1))
        assert client.get_run(last["mlflow_run_id"]).info.status == "FINISHED"


@pytest.mark.slow
def test_fidelity_on_joblib(tmp_path: Path, mlflow_template: Path) -> None:
    """Trials in joblib's worker processes continue the checkpoint in their first job directory
    (a local Ray instance: tests/test_ray.py)."""
    store = tmp_path / "mlflow.db"
    shutil.copy(mlflow_template, store)
    uri, sweep_dir = f"sqlite:///{store}", tmp_path / "sweep"
    proc = subprocess.run([sys.executable, "-m", "pipeline", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                           f"hydra.sweep.dir={sweep_dir}", f"tracking.uri={uri}", *FIDELITY_SWEEP],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    check_continued(sweep_dir, uri)
