"""Shared fixtures: Hydra ``compose()`` of the real ``conf/``, a template MLflow SQLite store
copied per test (creating one runs migrations, about a second), and a gradient checker."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from pipeline.app.resolvers import register

register()  # the schema and resolver conf/config.yaml composes with, as python -m pipeline does
ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


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


def numerical_grad(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar ``f()`` with respect to ``x`` (perturbed in place)."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        up = f()
        x[i] = old - eps
        down = f()
        x[i] = old
        grad[i] = (up - down) / (2 * eps)
    return grad


def assert_close(actual: np.ndarray, expected: np.ndarray, rtol: float = 1e-6, atol: float = 1e-9) -> None:
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def check_layer_gradients(layer, x: np.ndarray, training: bool = True, rtol: float = 1e-6, seed: int = 7) -> None:
    """Backward of ``layer`` against central differences of ``sum(forward(x) * r)``: ``dx`` and
    every entry of ``grads``."""
    r = np.random.default_rng(seed).normal(size=layer.forward(x, training).shape)

    def loss() -> float:
        return float(np.sum(layer.forward(x, training) * r))

    loss()
    dx = layer.backward(r)
    grads = {k: g.copy() for k, g in layer.grads.items()}
    if dx is not None:
        assert_close(dx, numerical_grad(loss, x), rtol=rtol, atol=1e-8)
    for key, value in layer.params.items():
        assert_close(grads[key], numerical_grad(loss, value), rtol=rtol, atol=1e-8)


class NormReLU:
    """A normalization plugin's ``forward_relu``/``backward_relu`` pair seen as one layer, for
    :func:`check_layer_gradients`."""

    def __init__(self, norm) -> None:
        self.norm, self.params, self.grads = norm, norm.params, norm.grads

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        return self.norm.forward_relu(x, training)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return self.norm.backward_relu(dy)


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
