"""Shared fixtures: Hydra ``compose()`` of the real ``conf/``, a template MLflow SQLite store
copied per test (creating one runs migrations, about a second), readers of a sweep's records; the
gradient checker is pipeline.testing's (shipped with the plugin contract suites)."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from pipeline.app.resolvers import register

register()  # the schema and resolver conf/config.yaml composes with, as python -m pipeline does
ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


@pytest.fixture(autouse=True)
def _alone_when_marked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Under ``pytest -n 2`` (pytest-xdist) a test marked ``alone`` runs while no other test does:
    every test holds a lock shared by all workers, a marked one holds it exclusively. For the
    tests whose outcome depends on time (a deadline met, a signal's record written within a
    bound), which the other worker's load on two cores would stretch."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        yield
        return
    alone = request.node.get_closest_marker("alone") is not None
    with open(tmp_path_factory.getbasetemp().parent / "alone.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        yield


@pytest.fixture
def compose_cfg() -> Iterator[Callable[..., DictConfig]]:
    """``compose_cfg("normalization=none", ...)`` -> the task config, as the CLI would see it."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        def _compose(*overrides: str) -> DictConfig:
            return compose(config_name="config", overrides=list(overrides))

        yield _compose


@pytest.fixture
def compose_with_choices() -> Iterator[Callable[..., tuple[DictConfig, dict[str, str]]]]:
    """Like ``compose_cfg`` but also returns Hydra's chosen option per config group."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        def _compose(*overrides: str) -> tuple[DictConfig, dict[str, str]]:
            cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
            choices = {k: v for k, v in cfg.hydra.runtime.choices.items() if not k.startswith("hydra")}
            with open_dict(cfg):
                del cfg["hydra"]
            return cfg, choices

        yield _compose


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite MLflow store built once per session."""
    from mlflow.tracking import MlflowClient

    db = tmp_path_factory.mktemp("mlflow_template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def tracking_uri(mlflow_template: Path, tmp_path: Path) -> str:
    """A fresh SQLite tracking URI in this test's temporary directory (copied from the template)."""
    db = tmp_path / "outputs" / "mlflow.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(mlflow_template, db)
    return f"sqlite:///{db}"


def sweep_runs(uri: str, experiment: str = "pipeline") -> tuple:
    """``(client, parent, trials)`` of the single sweep logged to ``uri``."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=5000)
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    return client, parent, trials


def trial_values(sweep_dir: Path) -> list:
    """The value of each trial of a sweep, in order (its ``trials.yaml``)."""
    import yaml

    return [t["value"] for t in yaml.safe_load((Path(sweep_dir) / "trials.yaml").read_text())]


def assert_one_finished_run_per_trial(runs: list, trials: int) -> None:
    """Among ``runs``, trials 0..``trials``-1 each have exactly one FINISHED run, with its
    metrics (a trial that ran again may also have a KILLED one)."""
    finished = [r for r in runs if r.info.status == "FINISHED" and "job" in r.data.tags]
    assert sorted(int(r.data.tags["job"]) for r in finished) == list(range(trials))
    assert all("val_loss" in r.data.metrics for r in finished)
