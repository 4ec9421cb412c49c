"""The training stage in-process: MLflow round trips through a real SQLite store."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from pipeline.errors import ConfigError, TrainingDiverged
from pipeline.train.stage import batches, run

EPOCHS = 4
FAST = (f"trainer.epochs={EPOCHS}", "model.width=32")


def _runs(uri: str) -> list:
    client = MlflowClient(tracking_uri=uri)
    exps = client.search_experiments()
    return client.search_runs([e.experiment_id for e in exps]) if exps else []


def test_run_round_trip_through_mlflow(compose_with_choices, tracking_uri: str, tmp_path: Path) -> None:
    cfg, choices = compose_with_choices(*FAST, f"tracking.uri={tracking_uri}", "+tracking.tags.note=hello")
    result = run(cfg, choices=choices, verbose=False)
    client = MlflowClient(tracking_uri=tracking_uri)
    r = client.get_run(result.run_id)
    assert r.info.status == "FINISHED"
    assert r.data.params["optimizer.lr"] == "0.05" and r.data.params["model.width"] == "32"
    assert r.data.params["normalization._target_"].endswith("BatchNorm")
    assert r.data.params["trainer.epochs"] == str(EPOCHS) and "tracking.experiment" not in r.data.params
    assert r.data.tags["normalization"] == "batch_norm" and r.data.tags["optimizer"] == "sgd"
    assert r.data.tags["data"] == "digits" and r.data.tags["note"] == "hello"
    for key in ("train_loss", "train_acc", "val_loss", "val_acc",
                "bn/layer0/running_mean_avg", "bn/layer0/running_var_avg", "bn/layer1/running_var_avg",
                "bn/layer0/batch_drift", "bn/layer1/batch_drift"):
        history = client.get_metric_history(result.run_id, key)
        assert [m.step for m in history] == list(range(1, EPOCHS + 1)), key
    val_loss = [m.value for m in client.get_metric_history(result.run_id, "val_loss")]
    assert val_loss == pytest.approx([h["val_loss"] for h in result.history])
    assert r.data.metrics["test_acc"] == pytest.approx(result.metrics["test_acc"])
    assert result.objective == pytest.approx(result.history[-1]["val_loss"])
    # artifacts: the resolved config and the weights with running statistics
    names = {a.path for a in client.list_artifacts(result.run_id)}
    assert names == {"config.yaml", "model.npz"}
    local = Path(client.download_artifacts(result.run_id, "model.npz", str(tmp_path)))
    with np.load(local) as weights:
        assert "hidden0.linear.b" not in weights.files and "output.b" in weights.files
        running_mean = weights["hidden0.norm.running_mean"]
        assert running_mean.shape == (32,) and weights["hidden0.linear.W"].shape == (64, 32)
        assert float(running_mean.mean()) == pytest.approx(
            result.history[-1]["bn/layer0/running_mean_avg"], rel=1e-5)
    config_text = Path(client.download_artifacts(result.run_id, "config.yaml", str(tmp_path))).read_text()
    assert "width: 32" in config_text
    # artifacts of the SQLite store live beside the database
    assert r.info.artifact_uri.startswith(Path(tracking_uri[len("sqlite:///"):]).parent.as_uri())


def test_no_normalization_logs_no_bn_metrics(compose_cfg, tracking_uri: str) -> None:
    cfg = compose_cfg(*FAST, "normalization=none", f"tracking.uri={tracking_uri}")
    result = run(cfg, verbose=False)
    metrics = MlflowClient(tracking_uri=tracking_uri).get_run(result.run_id).data.metrics
    assert not [k for k in metrics if k.startswith("bn/")] and "val_acc" in metrics


def test_tracking_disabled_writes_nothing(compose_cfg, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(compose_cfg(*FAST, "tracking.enabled=false"), verbose=False)
    assert result.run_id is None and not (tmp_path / "outputs").exists()
    assert 0.0 <= result.metrics["val_acc"] <= 1.0


def test_default_store_is_under_outputs_of_the_launch_dir(compose_cfg, tmp_path: Path, monkeypatch,
                                                          mlflow_template: Path) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(compose_cfg("trainer.epochs=1", "model.width=8"), verbose=False)
    db = tmp_path / "outputs" / "mlflow.db"
    assert db.is_file() and (tmp_path / "outputs" / "mlartifacts").is_dir()
    assert MlflowClient(tracking_uri=f"sqlite:///{db}").get_run(result.run_id).info.status == "FINISHED"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_seed_same_metrics_different_seed_different(compose_cfg, dtype: str) -> None:
    runs = [run(compose_cfg(*FAST, "tracking.enabled=false", f"seed={s}", f"model.dtype={dtype}"),
                verbose=False).history for s in (3, 3, 4)]
    assert runs[0] == runs[1]  # bit for bit (one BLAS thread)
    assert runs[0] != runs[2]


@pytest.mark.alone
def test_timeout_ends_the_run_failed_with_the_reason(compose_cfg, tracking_uri: str) -> None:
    from pipeline.errors import TrialTimeout

    cfg = compose_cfg("trainer.epochs=500", "model.width=32", "trainer.timeout_s=0.3", f"tracking.uri={tracking_uri}")
    started = time.perf_counter()
    with pytest.raises(TrialTimeout, match="trainer.timeout_s=0.3"):
        run(cfg, verbose=False)
    assert time.perf_counter() - started < 10
    (r,) = _runs(tracking_uri)
    assert r.info.status == "FAILED" and r.data.tags["failure_reason"] == "timeout"
    assert int(r.data.tags["failed_epoch"]) >= 1


def test_float64_is_selectable(compose_cfg) -> None:
    result = run(compose_cfg(*FAST, "tracking.enabled=false", "model.dtype=float64"), verbose=False)
    assert result.metrics["val_acc"] > 0.8


def test_diverging_trial_ends_failed_with_reason(compose_cfg, tracking_uri: str) -> None:
    cfg = compose_cfg(*FAST, "normalization=none", "optimizer.lr=1e6", f"tracking.uri={tracking_uri}")
    with pytest.raises(TrainingDiverged) as info:
        run(cfg, verbose=False)
    (r,) = _runs(tracking_uri)
    assert r.info.status == "FAILED"
    assert r.data.tags["failure_reason"] == "non-finite loss"
    assert r.data.tags["failed_epoch"] == str(info.value.epoch)


@pytest.mark.parametrize("override, key", [
    ("trainer.epochs=-1", "trainer.epochs"),
    ("trainer.epochs=0", "trainer.epochs"),
    ("trainer.batch_size=-5", "trainer.batch_size"),
    ("trainer.batch_size=100000", "trainer.batch_size"),
    ("model.width=0", "model.width"),
    ("model.dtype=float16", "model.dtype"),
    ("objective.metric=test_acc", "objective.metric"),
    ("objective.metric=accuracy", "objective.metric"),
    ("objective.direction=up", "objective.direction"),
    ("normalization.momentum=1.5", "normalization.momentum"),
    ("+normalization.bogus=1", "normalization.bogus"),
    ("optimizer.lr=-0.1", "optimizer.lr"),
    ("data=npz", "data.path"),
    ("data.val_fraction=0.9", "data.val_fraction"),
    ("tracking.uri=http://alice:s3cret@example.invalid:5000", "tracking.uri"),
    ("trainer.timeout_s=0", "trainer.timeout_s"),
])
def test_bad_input_is_refused_before_anything_is_logged(compose_cfg, tracking_uri: str, override: str,
                                                        key: str) -> None:
    overrides = [*FAST, f"tracking.uri={tracking_uri}", override]
    with pytest.raises(ConfigError) as info:
        run(compose_cfg(*overrides), verbose=False)
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}=")
    assert "s3cret" not in str(info.value)
    assert _runs(tracking_uri) == []


def test_batches_drop_only_a_too_small_last_batch() -> None:
    rng = np.random.default_rng(0)
    assert [len(b) for b in batches(10, 4, 2, rng)] == [4, 4, 2]
    assert [len(b) for b in batches(9, 4, 2, rng)] == [4, 4]  # a last batch of one is dropped
    assert [len(b) for b in batches(9, 4, 1, rng)] == [4, 4, 1]
    one_epoch = np.concatenate(batches(10, 3, 1, rng))
    assert sorted(one_epoch.tolist()) == list(range(10))


def test_summary_line_is_printed(compose_cfg, capsys) -> None:
    run(compose_cfg(*FAST, "tracking.enabled=false"))
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "digits/BatchNorm/SGD" in out[0] and "val_loss=" in out[0]
    assert "(held out)" in out[0]


def test_metrics_reach_the_store_while_the_run_is_going(tracking_uri: str) -> None:
    from pipeline.tracking.tracker import MlflowTracker

    client = MlflowClient(tracking_uri=tracking_uri)
    eager = MlflowTracker(tracking_uri, "live", flush_interval_s=0.0)
    eager.start({"a": 1}, {})
    eager.log_metrics({"m": 1.0}, step=1)
    assert [m.value for m in client.get_metric_history(eager.run_id, "m")] == [1.0]
    assert client.get_run(eager.run_id).info.status == "RUNNING"
    eager.end()
    lazy = MlflowTracker(tracking_uri, "live", flush_interval_s=3600.0)
    lazy.start({}, {})
    for step in range(1, 4):
        lazy.log_metrics({"m": float(step)}, step=step)
    assert client.get_metric_history(lazy.run_id, "m") == []  # buffered
    lazy.end()
    assert [m.step for m in client.get_metric_history(lazy.run_id, "m")] == [1, 2, 3]
    assert client.get_run(lazy.run_id).info.status == "FINISHED"


def test_credentials_never_leave_the_error() -> None:
    from pipeline.tracking.store import resolve_uri

    with pytest.raises(ConfigError) as info:
        resolve_uri("https://bob:hunter2@mlflow.example.invalid")
    text = str(info.value)
    assert "hunter2" not in text and "bob" not in text
    assert "MLFLOW_TRACKING_USERNAME" in text and "MLFLOW_TRACKING_PASSWORD" in text
    assert resolve_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert resolve_uri(None, "/somewhere") == "sqlite:////somewhere/outputs/mlflow.db"


def test_store_connections_commit_without_fsync_in_wal_mode(compose_cfg, tracking_uri: str, tmp_path: Path) -> None:
    """The trial's store runs WAL + synchronous=NORMAL on MLflow's own connections; another
    SQLite database opened through SQLAlchemy in the same process keeps SQLite's defaults."""
    import sqlalchemy

    run(compose_cfg(*FAST, f"tracking.uri={tracking_uri}"), verbose=False)
    store = MlflowClient(tracking_uri=tracking_uri)._tracking_client.store
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    other = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    with other.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL, untouched
    other.dispose()
