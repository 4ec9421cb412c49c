"""A trained model read back from its run's ``config.yaml`` and ``model.npz``: raw feature rows
(as the data set's ``X``) in, class probabilities out, standardised and labelled as in training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from pipeline.train.nn import MLP, softmax


class Classifier:
    """The MLP of ``config`` with the weights, running statistics and preprocessing of
    ``arrays`` (``model.npz``: ``input.mean``, ``input.std``, ``labels`` and the named arrays)."""

    def __init__(self, config: DictConfig, arrays: dict[str, np.ndarray]) -> None:
        from pipeline.train.stage import build_model

        self.mean, self.std = arrays["input.mean"], arrays["input.std"]
        self.labels = arrays["labels"]
        shape = _Shape(len(self.mean), len(self.labels))
        self.model: MLP = build_model(config, shape, np.random.default_rng(0))  # type: ignore[arg-type]
        self.model.load_arrays(arrays)

    @classmethod
    def load(cls, directory: str | Path) -> Classifier:
        """From a directory holding a run's ``config.yaml`` and ``model.npz``."""
        directory = Path(directory)
        with np.load(directory / "model.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        return cls(OmegaConf.load(directory / "config.yaml"), arrays)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (N, k) of raw rows ``X`` (N, d), columns in the order of ``labels``."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.mean):
            raise ValueError(f"expected rows of {len(self.mean)} features, got an array of shape {X.shape}")
        x = np.ascontiguousarray((X - self.mean) / self.std, dtype=self.model.dtype)
        return softmax(self.model.forward(x, training=False).astype(np.float64))


class _Shape:
    """What :func:`pipeline.train.stage.build_model` reads of a data set."""

    def __init__(self, n_features: int, n_classes: int) -> None:
        self.n_features, self.n_classes = n_features, n_classes
