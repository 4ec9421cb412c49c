"""This app's export hook (``hydra.sweeper.export: pipeline.app.export.log_model``): the sweep's best
trial as an MLflow ``pyfunc`` model on the sweep's run. The model takes raw feature rows (as the
data set's ``X``), standardises them as in training and returns class probabilities in columns
named by the original labels; it carries this package's code, so it loads where numpy, Hydra
and MLflow are installed."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from omegaconf import OmegaConf

from pipeline.sweep.files import METRICS_FILE
from pipeline.train.predict import Classifier

EXAMPLE_ROWS = 5


class ClassProbabilities(mlflow.pyfunc.PythonModel):
    """The pyfunc: its ``model`` artifact is a directory with the trial's ``config.yaml`` and
    ``model.npz`` (pipeline.predict.Classifier)."""

    def load_context(self, context: Any) -> None:
        self.classifier = Classifier.load(context.artifacts["model"])

    def predict(self, context: Any, model_input: np.ndarray, params: dict[str, Any] | None = None) -> Any:
        """Probabilities (a DataFrame, one column per label) of raw rows (N, d); the tensor
        signature hands them over as an array."""
        import pandas as pd

        rows = model_input.to_numpy() if hasattr(model_input, "to_numpy") else np.asarray(model_input)
        return pd.DataFrame(self.classifier.predict_proba(rows), columns=[str(v) for v in self.classifier.labels])


def log_model(job_dir: Path, run_id: str, tracking_uri: str) -> str:
    """Log the model trained in ``job_dir`` (its MLflow run's artifacts) on run ``run_id`` of the
    store at ``tracking_uri``; returns the model's URI (``models:/<id>``)."""
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    trial = json.loads((Path(job_dir) / METRICS_FILE).read_text()).get("run_id")
    if not trial:
        raise ValueError(f"{job_dir}: the trial has no MLflow run to take its model from")
    mlflow.set_tracking_uri(tracking_uri)
    with _calm_mlflow(), tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        model_dir.mkdir()
        client = MlflowClient(tracking_uri)
        for name in ("config.yaml", "model.npz"):
            client.download_artifacts(trial, name, str(model_dir))
        classifier = Classifier.load(model_dir)
        example = _example_rows(model_dir / "config.yaml")
        probabilities = ClassProbabilities()
        probabilities.classifier = classifier
        signature = infer_signature(example, probabilities.predict(None, example))
        code = Path(tmp) / "model_code.py"  # MLflow's models from code: nothing pickled
        code.write_text("import mlflow\nfrom pipeline.app.export import ClassProbabilities\n\n"
                        "mlflow.models.set_model(ClassProbabilities())\n")
        experiment_id = client.get_run(run_id).info.experiment_id
        model = mlflow.initialize_logged_model(name="model", source_run_id=run_id, experiment_id=experiment_id,
                                               tags={"trial_run_id": trial})
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(code), artifacts={"model": str(model_dir)}, model_id=model.model_id,
            signature=signature, input_example=example, code_paths=_code_paths(),
            pip_requirements=[f"{p}=={version(p)}" for p in ("numpy", "omegaconf", "hydra-core", "mlflow")])
        from mlflow.entities import LoggedModelOutput

        client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])  # the run's "Logged models"
    return info.model_uri


@contextmanager
def _calm_mlflow() -> Iterator[None]:
    """Without MLflow's download progress bars and its INFO lines about signatures."""
    import logging

    logger, bars = logging.getLogger("mlflow"), os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    level = logger.level
    logger.setLevel(logging.WARNING)
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        yield
    finally:
        logger.setLevel(level)
        if bars is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = bars


def _code_paths() -> list[str]:
    """This package and its plugins, copied into the model (no compiled caches)."""
    import pipeline
    import plugins

    return [str(Path(pipeline.__file__).parent), str(Path(plugins.__file__).parent)]


def _example_rows(config_path: Path) -> np.ndarray:
    """The first rows of the held-out part as loaded (raw, before standardisation)."""
    from pipeline.registry import build

    cfg = OmegaConf.load(config_path)
    data = build(cfg.data, "data", dtype=np.float64)
    return data.X_test[:EXAMPLE_ROWS] * data.std + data.mean
