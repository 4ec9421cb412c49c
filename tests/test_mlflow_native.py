"""What a sweep leaves in MLflow for its UI and its model registry, read back from a real store:
the experiment marked as holding training runs, each trial's data set as a dataset input, the
sweep's name on every run, and the best trial's model as a pyfunc on the sweep's run (loaded and
asked to predict), registered by name; the printed link opens the training-runs view."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import sweep_runs

pytestmark = pytest.mark.slow


def _sweep(tmp_path: Path, uri: str, *extra: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "-m", "hydra.sweeper.n_trials=6", "hydra.sweeper.fidelity.key=null",
         "trainer.epochs=2", f"tracking.uri={uri}", "hydra.sweeper.importance=false", "hydra.sweeper.plots=false",
         f"hydra.sweep.dir={tmp_path / 'multirun' / 'day' / 'sweep1'}", *extra],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env={**os.environ, "HYDRA_FULL_ERROR": "0"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_a_sweep_in_mlflow(tmp_path: Path, tracking_uri: str) -> None:
    import mlflow

    from pipeline.train.data import digits

    proc = _sweep(tmp_path, tracking_uri, "hydra.sweeper.register_model=digits-mlp")
    client, parent, trials = sweep_runs(tracking_uri)
    assert len(trials) == 6
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    link = f"/#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning"
    assert link in proc.stdout

    # every run of the sweep carries its name; a filter selects exactly them
    assert parent.data.tags["sweep"] == "day/sweep1"
    assert {t.data.tags["sweep"] for t in trials} == {"day/sweep1"}
    selected = client.search_runs([experiment.experiment_id], filter_string="tags.sweep = 'day/sweep1'")
    assert len(selected) == 7

    # each trial's data set: the Dataset column of the runs table (the sweep's row shows it too)
    data = digits(val_fraction=0.15, test_fraction=0.15, split_seed=0)
    for trial in [*trials, client.get_run(parent.info.run_id)]:
        (used,) = trial.inputs.dataset_inputs
        assert (used.dataset.name, used.dataset.digest, used.dataset.source_type) == ("digits", data.digest, "code")
        features = json.loads(json.loads(used.dataset.schema)["mlflow_tensorspec"]["features"])
        assert features[0]["tensor-spec"] == {"dtype": "float64", "shape": [-1, 64]}
        assert json.loads(used.dataset.profile)["num_rows"] == 1797
        assert {(t.key, t.value) for t in used.tags} == {("mlflow.data.context", "training")}

    # the best trial's model on the sweep's run: raw rows in, its held-out accuracy out
    mlflow.set_tracking_uri(tracking_uri)
    (model,) = mlflow.search_logged_models(experiment_ids=[experiment.experiment_id], output_format="list",
                                           filter_string=f"source_run_id = '{parent.info.run_id}'")
    assert f"Model: {model.model_uri}" in proc.stdout
    outputs = client.get_run(parent.info.run_id).outputs.model_outputs  # the run page's "Logged models"
    assert [o.model_id for o in outputs] == [model.model_id]
    best = yaml.safe_load((tmp_path / "multirun" / "day" / "sweep1" / "optimization_results.yaml").read_text())
    (best_run,) = [t for t in trials if t.info.run_id == best["best_trial"]["mlflow_run_id"]]
    loaded = mlflow.pyfunc.load_model(model.model_uri)
    raw = data.X_test * data.std + data.mean
    probabilities = loaded.predict(raw)
    assert list(probabilities.columns) == [str(i) for i in range(10)]
    np.testing.assert_allclose(probabilities.to_numpy().sum(axis=1), 1.0, rtol=1e-12)
    accuracy = float((probabilities.to_numpy().argmax(axis=1) == data.y_test).mean())
    assert accuracy == pytest.approx(best_run.data.metrics["test_acc"], abs=1e-12)
    signature = loaded.metadata.signature
    assert signature.inputs.to_dict() == [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": (-1, 64)}}]
    assert loaded.metadata.saved_input_example_info is not None

    # registered under the name asked for
    assert "Registered: models:/digits-mlp/1" in proc.stdout
    version = client.get_model_version("digits-mlp", "1")
    assert version.source == model.model_uri or version.model_id == model.model_id
    again = mlflow.pyfunc.load_model("models:/digits-mlp/1").predict(raw[:3])
    np.testing.assert_allclose(again.to_numpy(), probabilities.to_numpy()[:3], atol=1e-6)  # float32 model

    # resuming the finished sweep neither logs the model again nor registers a second version
    resumed = _sweep(tmp_path, tracking_uri, "hydra.sweeper.register_model=digits-mlp", "hydra.sweeper.resume=true")
    assert f"Model: {model.model_uri}" in resumed.stdout and "Registered: models:/digits-mlp/1" in resumed.stdout
    assert [m.model_id for m in mlflow.search_logged_models(experiment_ids=[experiment.experiment_id],
                                                             output_format="list")] == [model.model_id]
    assert [str(v.version) for v in client.search_model_versions("name = 'digits-mlp'")] == ["1"]


def test_the_model_names_its_columns_by_the_original_labels(tmp_path: Path, tracking_uri: str) -> None:
    """npz labels are remapped to 0..k-1 for training; the model's columns carry the originals."""
    import mlflow

    rng = np.random.default_rng(0)
    labels = np.array(["ant", "bee", "cat"])
    y = labels[np.arange(300) % 3]
    X = rng.normal(size=(300, 4)) + 3.0 * (np.arange(300) % 3)[:, None] + 100.0  # raw, far from standardised
    np.savez(tmp_path / "insects.npz", X=X, y=y)
    _sweep(tmp_path, tracking_uri, "data=npz", f"data.path={tmp_path / 'insects.npz'}", "model.width=16",
           "trainer.batch_size=32")
    client, parent, trials = sweep_runs(tracking_uri)
    (used,) = trials[0].inputs.dataset_inputs
    assert used.dataset.name == "insects" and used.dataset.source_type == "local"
    assert str(tmp_path / "insects.npz") in used.dataset.source
    mlflow.set_tracking_uri(tracking_uri)
    (model,) = mlflow.search_logged_models(experiment_ids=[parent.info.experiment_id], output_format="list")
    probabilities = mlflow.pyfunc.load_model(model.model_uri).predict(X)
    assert list(probabilities.columns) == ["ant", "bee", "cat"]
    predicted = labels[probabilities.to_numpy().argmax(axis=1)]
    assert (predicted == y).mean() > 0.9  # separable classes, raw rows standardised inside the model


def test_an_app_without_an_export_hook_gets_one_line(tmp_path: Path, tracking_uri: str) -> None:
    proc = _sweep(tmp_path, tracking_uri, "hydra.sweeper.export=null")
    notes = [line for line in proc.stdout.splitlines() if line.startswith("Model:")]
    assert notes == ["Model: not logged (this app sets no hydra.sweeper.export hook to log the best trial's model)"]
