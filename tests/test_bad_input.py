"""Bad input is refused before any trial starts: one line naming the key and the value, no
traceback, nothing written to MLflow or to the sweep directory.

Search dimensions are given both ways: on the command line and as a ``hydra.sweeper.params``
entry in a config file (``--config-dir`` + ``+space=bad``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

# (overrides, config-file params or None, expected text in stderr)
CASES = [
    (["normalization=batch_norm,nope"], None, "normalization=nope"),
    ([], {"optimizer.lr": "interval(0.1"}, "optimizer.lr='interval(0.1': cannot parse"),
    (["optimizer.lr=interval(1, 0.1)"], None, "optimizer.lr='interval(1.0, 0.1)': reversed interval"),
    ([], {"optimizer.lr": "interval(1, 0.1)"}, "optimizer.lr='interval(1.0, 0.1)': reversed interval"),
    (["optimizer.lr=interval(0.5, 0.5)"], None, "optimizer.lr='interval(0.5, 0.5)': empty interval"),
    (["optimizer.lr=tag(log, interval(0, 1))"], None, "optimizer.lr='tag(log, interval(0.0, 1.0))': log scale"),
    ([], {"optimizer.lr": "tag(log, interval(0, 1))"}, "optimizer.lr='tag(log, interval(0.0, 1.0))': log scale"),
    (["optimizer.momentum=tag(log1m, interval(0.5, 1.5))"], None, "log1m scale needs bounds inside (0, 1)"),
    ([], {"optimizer.momentum": "tag(log1m, interval(0, 0.9))"}, "log1m scale needs bounds inside (0, 1)"),
    (["model.widht=choice(8, 16)"], None, "model.widht='choice(8, 16)': not a key of the composed config"),
    ([], {"model.widht": "choice(8, 16)"}, "model.widht='choice(8, 16)': not a key of the composed config"),
    (["optimizer=adam"], None, "optimizer.momentum='tag(log1m, interval(0.5, 0.999))': not a key"),
    ([], {"trainer.batch_size": "choice()"}, "trainer.batch_size='choice()': cannot parse"),
    (["hydra.sweeper.rounds=0"], None, "hydra.sweeper.rounds=0: must be a positive integer (or null)"),
    (["hydra.sweeper.trials_per_round=-1"], None, "hydra.sweeper.trials_per_round=-1: must be a positive"),
    (["hydra.sweeper.top_k=40"], None, "hydra.sweeper.top_k=40: larger than a round"),
    (["hydra.sweeper.top_k=17", "hydra.sweeper.fidelity.key=null", "hydra.sweeper.n_trials=48"], None,
     "hydra.sweeper.top_k=17: larger than a round (4 rounds x 12 trials = 48 trials)"),
    (["hydra.sweeper.margin=-0.1"], None, "hydra.sweeper.margin=-0.1: must be >= 0"),
    (["hydra.sweeper.zoom=box"], None, "hydra.sweeper.zoom='box': must be one of span, trust"),
    (["hydra.sweeper.shrink=0"], None, "hydra.sweeper.shrink=0.0: must be in (0, 1]"),
    (["objective.direction=up"], None, "objective.direction='up': must be"),
    (["objective.metric=accuracy"], None, "objective.metric='accuracy': must be one of"),
    (["objective.metric=test_acc"], None, "held out and never used to choose"),
    (["trainer.epochs=0"], None, "trainer.epochs=0: must be a positive number: the most trainer.epochs a trial gets"),
    (["trainer.epochs=0", "hydra.sweeper.fidelity.key=null"], None, "trainer.epochs=0: must be a positive integer"),
    (["trainer.batch_size=choice(32, 0)"], None, "trainer.batch_size=0: must be a positive integer"),
    (["trainer.batch_size=5000"], None, "trainer.batch_size=5000: larger than the training set"),
    (["data=npz", "data.path=missing.npz"], None, "data.path='missing.npz': file not found"),
    (["data=npz", "data.path=noX.npz"], None, "data.path='noX.npz': npz has no array X"),
    (["data=npz", "data.path=short.npz"], None, "X and y have different lengths: 10 vs 9"),
    (["normalization.momentum=1.5"], None, "normalization.momentum=1.5: momentum must be in [0, 1)"),
    (["tracking.uri=http://alice:s3cret@127.0.0.1:9"], None, "credentials in the tracking URI are refused"),
    # passed the check and then failed every trial, or were accepted silently (issue 16)
    (["trainer.batch_size=choice(1, 64)"], None,
     "trainer.batch_size=1: below the smallest mini-batch the normalization takes (2)"),
    (["trainer.batch_size=1"], None, "trainer.batch_size=1: below the smallest mini-batch"),
    (["data=synthetic", "data.noise=nan"], None, "data.noise=nan: must be a finite number >= 0"),
    (["data=npz", "data.path=nan_labels.npz"], None, "y holds NaN or infinite labels"),
    (["data=npz", "data.path=complex.npz"], None, "X must be real, numeric and finite"),
    (["data=npz", "data.path=constant.npz"], None, "every feature of X is constant"),
    (["tracking.experiment=' '"], None, "tracking.experiment=' ': must be a non-empty name"),
    ([f"tracking.experiment={'x' * 501}"], None, "longer than MLflow's 500 characters (501)"),
    (["hydra.sweeper.timeout_s=inf"], None, "hydra.sweeper.timeout_s=inf: must be a positive number"),
    (["hydra.sweeper.margin=inf"], None, "hydra.sweeper.margin=inf: must be >= 0"),
    (["optimizer.momentum=abc"], None, "optimizer.momentum='abc': expected a number"),
    (["normalization.eps=abc"], None, "normalization.eps='abc': expected a number"),
    (["normalization=interval(0, 1)"], None, "is a config group: search its options with choice(...)"),
    (["tracking.uri=ftp://x/y"], None, "tracking.uri='ftp://x/y': not a tracking URI MLflow can use"),
    (["tracking.uri=mssql://localhost/db"], None, "its database driver is not installed"),
    (["tracking.uri=sqlite:////proc/nope/mlflow.db"], None, "the store cannot be created: /proc is not a writable"),
    (["hydra.sweeper.tracking.uri=ftp://a"], None, "hydra.sweeper.tracking.uri='ftp://a': not a tracking URI"),
    (["model.width=choice(64, 1000000)"], None, "model.width=1000000: a 2 x 1000000 network needs ~"),
    # the fidelity schedule (issue 15) and the sweeper's other settings
    (["hydra.sweeper.fidelity.eta=1"], None, "hydra.sweeper.fidelity.eta=1: must be an integer >= 2"),
    (["hydra.sweeper.fidelity.eta=2.5"], None, "hydra.sweeper.fidelity.eta=2.5: expected an integer"),
    (["hydra.sweeper.fidelity.min=0"], None,
     "hydra.sweeper.fidelity.min=0: must be a positive number: the least trainer.epochs a trial gets"),
    (["hydra.sweeper.fidelity.min=abc"], None, "hydra.sweeper.fidelity.min='abc': must be a positive number"),
    (["hydra.sweeper.fidelity.key=trainer.nope"], None,
     "hydra.sweeper.fidelity.key='trainer.nope': not a key of the task config"),
    (["hydra.sweeper.fidelity.resume_key=trainer.nope"], None,
     "hydra.sweeper.fidelity.resume_key='trainer.nope': not a key of the task config"),
    (["+hydra.sweeper.fidelity.rungs=3"], None,
     "hydra.sweeper.fidelity.rungs=3: not a fidelity setting (key, min, max, eta, resume_key)"),
    (["trainer.epochs=choice(5, 10)"], None,
     "hydra.sweeper.fidelity.key='trainer.epochs': is also a searched parameter"),
    (["hydra.sweeper.budget=10"], None, "hydra.sweeper.budget=10.0: too small for one configuration through the rungs"
     " (47 needed"),
    (["hydra.sweeper.budget=-5"], None, "hydra.sweeper.budget=-5.0: must be a positive number of epochs (or null)"),
    (["hydra.sweeper.fidelity.key=null", "hydra.sweeper.budget=100"], None,
     "hydra.sweeper.budget=100.0: caps the fidelity spent; set hydra.sweeper.fidelity.key"),
    (["hydra.sweeper.n_trials=2"], None, "hydra.sweeper.n_trials=2: too small for one configuration through the rungs"),
    (["hydra.sweeper.rounds=3"], None, "hydra.sweeper.rounds=3: the rounds of a fidelity sweep are its rungs"),
    (["hydra.sweeper.n_trials=1.5"], None, "hydra.sweeper.n_trials=1.5: expected an integer"),
    (["hydra.sweeper.batch_size=0"], None, "hydra.sweeper.batch_size=0: must be a positive integer"),
    (["hydra.sweeper.export=null", "hydra.sweeper.register_model=digits"], None,
     "hydra.sweeper.register_model='digits': needs a model to register: set hydra.sweeper.export"),
    (["tracking.enabled=false", "hydra.sweeper.register_model=digits"], None,
     "hydra.sweeper.register_model='digits': needs MLflow tracking"),
    (["hydra.sweeper.export=pipeline.nope.log_model"], None,
     "hydra.sweeper.export='pipeline.nope.log_model': cannot import it"),
    (["hydra.sweeper.quiet=true", "hydra.sweeper.verbose=true"], None,
     "hydra.sweeper.verbose=True: cannot be combined with hydra.sweeper.quiet=true"),
    (["hydra.sweeper.final_seeds=-1"], None, "hydra.sweeper.final_seeds=-1: must be an integer >= 0"),
    (["hydra.sweeper.final_seeds=2", "hydra.sweeper.final_top=0"], None,
     "hydra.sweeper.final_top=0: must be a positive integer"),
    (["hydra.sweeper.explore=1"], None, "hydra.sweeper.explore=1.0: must be in [0, 1)"),
    (["hydra.sweeper.top_fraction=0"], None, "hydra.sweeper.top_fraction=0.0: must be in (0, 1]"),
    (["hydra.sweeper.max_failure_rate=2"], None, "hydra.sweeper.max_failure_rate=2.0: must be in [0, 1]"),
    (["hydra.sweeper.narrow_choices=maybe"], None, "hydra.sweeper.narrow_choices='maybe': expected true or false"),
    (["hydra.sweeper.timeout_s=-1"], None, "hydra.sweeper.timeout_s=-1.0: must be a positive number of seconds"),
    (["hydra.sweeper.direction=up"], None, "hydra.sweeper.direction='up': must be minimize or maximize"),
    (["+hydra.sweeper.colour=red"], None, "hydra.sweeper.colour='red': not a setting of the zoom sweeper"),
]


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "HYDRA_FULL_ERROR": "0"})


@pytest.mark.parametrize("overrides, params, expected", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_sweep_refuses_bad_input_before_anything_runs(tmp_path: Path, overrides: list[str], params: dict | None,
                                                      expected: str) -> None:
    np.savez(tmp_path / "noX.npz", y=np.zeros(10))
    np.savez(tmp_path / "short.npz", X=np.zeros((10, 2)), y=np.zeros(9))
    X = np.random.default_rng(0).normal(size=(40, 3))
    np.savez(tmp_path / "nan_labels.npz", X=X, y=np.r_[np.zeros(20), np.ones(19), np.nan])
    np.savez(tmp_path / "complex.npz", X=X + 1j, y=np.arange(40) % 2)
    np.savez(tmp_path / "constant.npz", X=np.ones((40, 3)), y=np.arange(40) % 2)
    extra = []
    if params is not None:
        space = tmp_path / "extra" / "space"
        space.mkdir(parents=True)
        lines = ["# @package hydra.sweeper.params"] + [f"{k}: '{v}'" for k, v in params.items()]
        (space / "bad.yaml").write_text("\n".join(lines) + "\n")
        extra = [f"--config-dir={tmp_path / 'extra'}", "+space=bad"]
    db = tmp_path / "mlflow.db"
    proc = _run(tmp_path, "-m", *extra, f"hydra.sweep.dir={tmp_path / 'sweep'}", f"tracking.uri=sqlite:///{db}",
                *overrides)
    assert proc.returncode == 2, (proc.stdout[-1500:], proc.stderr[-1500:])
    assert expected in proc.stderr
    assert proc.stderr.startswith("Error: ") and proc.stderr.count("\n") == 1  # one line
    assert "Traceback" not in proc.stderr and "s3cret" not in proc.stderr
    assert not db.exists() and not (tmp_path / "sweep").exists()


def test_unknown_plugin_option_is_hydras_own_clear_error(tmp_path: Path) -> None:
    """A fixed unknown option fails while Hydra composes the primary config, before any sweeper
    or task code runs; its message names the group, the option and the available ones."""
    for args in (["normalization=nope"], ["-m", "normalization=nope"]):
        proc = _run(tmp_path, *args)
        assert proc.returncode == 1
        assert "Could not find 'normalization/nope'" in proc.stderr and "batch_norm" in proc.stderr
        assert "Traceback" not in proc.stderr


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.alone
@pytest.mark.parametrize("mode", [[], ["-m"]])
def test_unanswered_http_tracking_uri_fails_within_seconds(tmp_path: Path, mode: list[str]) -> None:
    uri = f"http://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    proc = _run(tmp_path, *mode, f"tracking.uri={uri}", "trainer.epochs=1")
    elapsed = time.monotonic() - started
    assert proc.returncode == 2, proc.stderr[-1500:]
    assert f"tracking.uri='{uri}': no MLflow server answers at {uri}/health" in proc.stderr
    assert elapsed < 30  # MLflow's own client would retry for minutes


def test_a_sweep_directory_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a directory")
    proc = _run(tmp_path, "-m", f"hydra.sweep.dir={tmp_path / 'afile'}", "tracking.enabled=false")
    assert proc.returncode == 2 and proc.stderr == f"Error: hydra.sweep.dir='{tmp_path / 'afile'}': is a file, not a " \
        "directory\n"


def test_malformed_yaml_in_a_config_dir_is_one_line_naming_the_file(tmp_path: Path) -> None:
    space = tmp_path / "extra" / "space"
    space.mkdir(parents=True)
    (space / "bad.yaml").write_text("# @package hydra.sweeper.params\noptimizer.lr: [interval(0.1, 1)\n")
    proc = _run(tmp_path, "-m", f"--config-dir={tmp_path / 'extra'}", "+space=bad",
                f"hydra.sweep.dir={tmp_path / 'sweep'}", "tracking.enabled=false")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"Error: {space / 'bad.yaml'}:3:1: malformed YAML: expected ',' or ']'")
    assert not (tmp_path / "sweep").exists()
