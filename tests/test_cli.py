"""``python -m pipeline`` as a user runs it: a subprocess in a temporary directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]


def pipeline(cwd: Path, *overrides: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, "-m", "pipeline", *overrides], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_default_run_from_another_directory(tmp_path: Path, mlflow_template: Path) -> None:
    """The default config, launched outside the repo, logs to <launch dir>/outputs/mlflow.db and
    batch norm on digits reaches >= 0.95 validation accuracy."""
    db = tmp_path / "outputs" / "mlflow.db"
    db.parent.mkdir()
    shutil.copy(mlflow_template, db)
    proc = pipeline(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "digits/batch_norm/sgd" in proc.stdout and "(held out)" in proc.stdout
    assert "epoch 20/20 train_loss=" in proc.stdout  # not a terminal: one progress line per epoch
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    (exp,) = [e for e in client.search_experiments() if e.name == "pipeline"]
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["val_acc"] >= 0.95
    assert len(client.get_metric_history(run.info.run_id, "val_acc")) == 20
    assert len(client.get_metric_history(run.info.run_id, "bn/layer1/running_var_avg")) == 20
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"config.yaml", "model.npz"}
    assert run.data.tags["normalization"] == "batch_norm" and run.data.params["seed"] == "0"
    assert list((tmp_path / "outputs" / "runs").glob("*/*/.hydra/config.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("overrides, expected", [
    (["normalization=foo"], "Could not find 'normalization/foo'"),
    (["optimizer=rmsprop"], "Could not find 'optimizer/rmsprop'"),
    (["trainer.epochs=-1"], "trainer.epochs=-1: must be a positive integer"),
    (["trainer.batch_size=0"], "trainer.batch_size=0: must be a positive integer"),
    (["data=npz", "data.path=missing.npz"], "data.path='missing.npz': file not found"),
    (["data=npz"], "data.path='???': required value is missing"),
    (["tracking.uri=http://u:pw@localhost:1"], "MLFLOW_TRACKING_PASSWORD"),
    # refused by the checks of the training stage (plugins, data, sizes), before the run directory
    (["optimizer.momentum=abc"], "optimizer.momentum='abc': expected a number"),
    (["normalization.eps=abc"], "normalization.eps='abc': expected a number"),
    (["trainer.batch_size=5000"], "trainer.batch_size=5000: larger than the training set"),
    (["tracking.uri=ftp://x"], "tracking.uri='ftp://x': not a tracking URI MLflow can use"),
])
def test_bad_input_gives_one_clear_message(tmp_path: Path, overrides: list[str], expected: str) -> None:
    proc = pipeline(tmp_path, *overrides)
    assert proc.returncode != 0
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr and "pw@" not in proc.stderr
    assert not (tmp_path / "outputs").exists()  # no store and no run directory of the refused run


@pytest.mark.slow
def test_bad_npz_contents(tmp_path: Path) -> None:
    import numpy as np

    np.savez(tmp_path / "d.npz", X=np.zeros((10, 2)), y=np.zeros(9))
    proc = pipeline(tmp_path, "data=npz", "data.path=d.npz", "tracking.enabled=false")
    assert proc.returncode == 2
    assert "data.path='d.npz': X and y have different lengths: 10 vs 9" in proc.stderr


@pytest.mark.slow
def test_quiet_single_run_prints_only_the_summary(tmp_path: Path) -> None:
    proc = pipeline(tmp_path, "quiet=true", "trainer.epochs=2", "tracking.enabled=false")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1 and "digits/batch_norm/sgd" in proc.stdout


def test_shell_completion_of_the_pipeline_command(tmp_path: Path) -> None:
    """Hydra's bash completion, installed for the ``pipeline`` console command as its docs say
    (``eval "$(pipeline -sc install=bash)"``), completes config groups and keys of this app."""
    command = Path(sys.executable).parent / "pipeline"
    assert command.exists(), "the pipeline console command is installed beside python"
    script = '''eval "$(pipeline -sc install=bash)"
    for line in "pipeline normalization=" "pipeline optimizer.l" "pipeline hydra/sweeper=pip"; do
        COMP_LINE="$line"; COMP_POINT=${#line}; COMP_CWORD=1
        hydra_bash_completion; echo "${COMPREPLY[*]}"
    done'''
    env = {**os.environ, "PATH": f"{command.parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "normalization=batch_norm normalization=layer_norm normalization=none",
        "optimizer.lr=",
        "hydra/sweeper=pipeline_optuna hydra/sweeper=pipeline_zoom",
    ]


def test_help_texts_say_what_the_tools_do(tmp_path: Path) -> None:
    """``--help`` names the app and its two modes, not Hydra's '__main__ is powered by Hydra';
    the helper tools' help is plain text (no reStructuredText markup)."""
    app = subprocess.run([sys.executable, "-m", "pipeline", "--help"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert app.returncode == 0 and app.stdout.startswith("pipeline: train a numpy MLP")
    assert "python -m pipeline -m [override ...]" in app.stdout and "hydra.sweeper.params" in app.stdout
    assert "powered by Hydra" not in app.stdout and "normalization: batch_norm, layer_norm, none" in app.stdout
    for module in ("pipeline.zoom", "pipeline.importance", "benchmarks"):
        text = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True,
                              timeout=120).stdout
        assert "usage:" in text and "``" not in text, module
