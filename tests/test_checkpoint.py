"""Continuing a trial from its checkpoint (``trainer.resume_from``) is the same as never having
stopped: bit for bit in float64, and in float32 with one BLAS thread; the MLflow run is extended,
each epoch logged once; a checkpoint of another configuration is refused up front."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from pipeline.errors import ConfigError, TrialPruned
from pipeline.train import checkpoint
from pipeline.train.stage import run

SMALL = ("model.width=24", "trainer.batch_size=128")


def _arrays(directory: Path) -> dict[str, np.ndarray]:
    ckpt = checkpoint.load(checkpoint.path_in(directory))
    return {"weights": ckpt.weights, **{f"opt.{k}": v for k, v in ckpt.optimizer.items()},
            **{f"norm{i}.{k}": v for i, s in enumerate(ckpt.norms) for k, v in s.items()}}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_three_then_nine_epochs_equal_nine_from_scratch(compose_cfg, tmp_path: Path, dtype: str,
                                                        optimizer: str) -> None:
    base = (*SMALL, f"model.dtype={dtype}", f"optimizer={optimizer}", "tracking.enabled=false",
            "trainer.blas_threads=1")
    scratch, continued = tmp_path / "scratch", tmp_path / "continued"
    full = run(compose_cfg(*base, "trainer.epochs=9", f"trainer.resume_from={scratch}"), verbose=False)
    first = run(compose_cfg(*base, "trainer.epochs=3", f"trainer.resume_from={continued}"), verbose=False)
    assert checkpoint.load(checkpoint.path_in(continued)).epoch == 3
    seen: list[int] = []
    rest = run(compose_cfg(*base, "trainer.epochs=9", f"trainer.resume_from={continued}"), verbose=False,
               on_epoch=lambda epoch, metrics: seen.append(epoch))
    assert seen == [4, 5, 6, 7, 8, 9]  # only the new epochs were trained
    assert first.history == full.history[:3] and rest.history == full.history
    assert rest.metrics == full.metrics  # test metrics too: the same model
    a, b = _arrays(scratch), _arrays(continued)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert a["weights"].dtype == np.dtype(dtype)


def test_the_continued_run_is_one_mlflow_run(compose_cfg, tmp_path: Path, tracking_uri: str) -> None:
    keep = tmp_path / "trial"
    base = (*SMALL, f"tracking.uri={tracking_uri}", f"trainer.resume_from={keep}")
    first = run(compose_cfg(*base, "trainer.epochs=2", "+tracking.tags.rung=0"), verbose=False)
    second = run(compose_cfg(*base, "trainer.epochs=5", "+tracking.tags.rung=1"), verbose=False)
    assert first.run_id == second.run_id
    client = MlflowClient(tracking_uri=tracking_uri)
    got = client.get_run(second.run_id)
    assert got.info.status == "FINISHED" and got.data.tags["rung"] == "1"
    assert [m.step for m in client.get_metric_history(second.run_id, "val_loss")] == [1, 2, 3, 4, 5]
    assert [(m.step, m.value) for m in client.get_metric_history(second.run_id, "epochs")] == [(2, 2.0), (5, 5.0)]
    assert "trainer.epochs" not in got.data.params and "trainer.resume_from" not in got.data.params
    assert got.data.params["model.width"] == "24"


def test_epochs_the_run_missed_are_logged_from_the_checkpoint(compose_cfg, tmp_path: Path,
                                                             tracking_uri: str) -> None:
    """A process killed with metrics still buffered: the checkpoint has epochs the run lacks;
    continuing logs exactly those, so every step appears once."""
    keep = tmp_path / "trial"
    base = (*SMALL, f"tracking.uri={tracking_uri}", f"trainer.resume_from={keep}")
    first = run(compose_cfg(*base, "trainer.epochs=4"), verbose=False)
    client = MlflowClient(tracking_uri=tracking_uri)
    ckpt = checkpoint.load(checkpoint.path_in(keep))
    # the store as a process killed after epoch 2's flush would have left it: a fresh run with
    # steps 1-2, and a checkpoint at epoch 3 naming that run
    exp = client.get_run(first.run_id).info.experiment_id
    partial = client.create_run(exp).info.run_id
    for epoch in (1, 2):
        client.log_metric(partial, "val_loss", ckpt.history[epoch - 1]["val_loss"], step=epoch)
    ckpt.history, ckpt.epoch, ckpt.run = ckpt.history[:3], 3, {"uri": tracking_uri, "run_id": partial}
    checkpoint.save(checkpoint.path_in(keep), ckpt)  # (its weights are epoch 4's: only logging is checked)
    again = run(compose_cfg(*base, "trainer.epochs=4"), verbose=False)
    assert again.run_id == partial
    steps = [m.step for m in client.get_metric_history(partial, "val_loss")]
    assert sorted(steps) == [1, 2, 3, 4]


def test_a_checkpoint_of_another_configuration_or_fewer_epochs_is_refused(compose_cfg, tmp_path: Path) -> None:
    keep = tmp_path / "trial"
    run(compose_cfg(*SMALL, "tracking.enabled=false", "trainer.epochs=2", f"trainer.resume_from={keep}"),
        verbose=False)
    with pytest.raises(ConfigError, match="trainer.epochs=1: is below the 2 epochs already trained"):
        run(compose_cfg(*SMALL, "tracking.enabled=false", "trainer.epochs=1", f"trainer.resume_from={keep}"),
            verbose=False)
    with pytest.raises(ConfigError, match="trainer.resume_from=.*another configuration"):
        run(compose_cfg(*SMALL, "tracking.enabled=false", "trainer.epochs=2", "optimizer.lr=0.5",
                        f"trainer.resume_from={keep}"), verbose=False)


def test_a_pruned_trial_ends_pruned_not_failed(compose_cfg, tracking_uri: str) -> None:
    def prune(epoch: int, metrics: dict) -> None:
        if epoch == 2:
            raise TrialPruned(epoch)

    with pytest.raises(TrialPruned):
        run(compose_cfg(*SMALL, "trainer.epochs=6", f"tracking.uri={tracking_uri}"), verbose=False, on_epoch=prune)
    client = MlflowClient(tracking_uri=tracking_uri)
    (got,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert got.info.status == "KILLED" and got.data.tags["pruned"] == "true" and got.data.tags["pruned_epoch"] == "2"
    assert [m.step for m in client.get_metric_history(got.info.run_id, "val_loss")] == [1, 2]
