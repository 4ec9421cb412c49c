"""Data sets, a seeded stratified train/validation/test split, and standardisation.

Each loader returns ``(X, y)`` with ``X`` of shape (N, d) and integer labels ``y`` of shape (N,)
in ``0..k-1``. :func:`prepare` splits and standardises with training-set statistics only; the
test part is for reporting and is never used to choose anything.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import DTypeLike

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class Dataset:
    """Standardised splits; ``X_*`` of shape (N_*, d) in the model's dtype, ``y_*`` int64 (N_*,)."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    # What a trained model needs to take raw rows (``X`` as loaded) and give named classes: the
    # training part's mean and std, and the original label of each class index (npz labels are
    # remapped to 0..k-1). Where the rows came from, and a digest of them, for MLflow.
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    labels: np.ndarray | None = None
    source: str = ""  # a file's absolute path, or the code that makes the data
    digest: str = ""

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    def mlflow_input(self) -> dict[str, str]:
        """This data set as an MLflow dataset (name, digest, source, schema, profile), in the
        JSON shapes ``mlflow.data.from_numpy`` writes, without importing ``mlflow.data``."""
        n = len(self.X_train) + len(self.X_val) + len(self.X_test)
        tensor = [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, self.n_features]}}]
        target = [{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]
        return {
            "name": self.name, "digest": self.digest,
            "source_type": "local" if Path(self.source).is_absolute() else "code",
            "source": json.dumps({"uri": self.source}),
            "schema": json.dumps({"mlflow_tensorspec": {"features": json.dumps(tensor),
                                                        "targets": json.dumps(target)}}),
            "profile": json.dumps({"num_rows": n, "num_features": self.n_features, "num_classes": self.n_classes,
                                   "train_rows": len(self.X_train), "val_rows": len(self.X_val),
                                   "test_rows": len(self.X_test)}),
        }


def digest(X: np.ndarray, y: np.ndarray) -> str:
    """8 hex characters of a SHA-256 over the rows and labels (MLflow's digests are 8 long)."""
    h = hashlib.sha256()
    for a in (X, y):
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:8]


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (1797 x 64, 10 classes), read from the file it ships.

    Reading the file directly avoids importing ``sklearn.datasets`` (about a second).
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            raw = np.loadtxt(path, delimiter=",")
            return raw[:, :-1], raw[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits as sk_load_digits  # fallback: file moved

    bunch = sk_load_digits()
    return bunch.data.astype(np.float64), bunch.target.astype(np.int64)


def make_spirals(
    n_samples: int = 1500, n_classes: int = 3, noise: float = 0.2, turns: float = 1.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved 2-D spirals, one arm per class, with Gaussian noise (CS231n's toy set)."""
    if n_samples < n_classes * 2:
        raise ConfigError("data.n_samples", n_samples,
                          f"need at least 2 samples per class ({n_classes} classes)")
    if n_classes < 2:
        raise ConfigError("data.n_classes", n_classes, "need at least 2 classes")
    if not math.isfinite(noise) or noise < 0:
        raise ConfigError("data.noise", noise, "must be a finite number >= 0")
    if not math.isfinite(turns):
        raise ConfigError("data.turns", turns, "must be a finite number")
    rng = np.random.default_rng(seed)
    y = np.arange(n_samples) % n_classes
    t = rng.uniform(0.0, 1.0, n_samples)
    radius = t
    angle = 2 * np.pi * (turns * t + y / n_classes) + rng.normal(0.0, noise, n_samples)
    X = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1)
    return X, y.astype(np.int64)


def load_npz(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A user's ``.npz`` with arrays ``X`` (N, d) and ``y`` (N,); labels are remapped to 0..k-1.
    Returns ``X``, the remapped ``y`` and the original label of each class index."""
    if not path:
        raise ConfigError("data.path", path, "set data.path to an .npz file with arrays X and y")
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError("data.path", path, f"file not found (resolved to {file.resolve()})")
    try:
        with np.load(file, allow_pickle=False) as npz:
            missing = [k for k in ("X", "y") if k not in npz.files]
            if missing:
                raise ConfigError("data.path", path,
                                  f"npz has no array {' or '.join(missing)} (found: {npz.files})")
            X, y = npz["X"], npz["y"]
    except ConfigError:
        raise
    except ValueError as exc:  # object arrays need pickle, which is refused for safety
        raise ConfigError("data.path", path, f"cannot read npz without pickle: {exc}") from None
    except OSError as exc:
        raise ConfigError("data.path", path, f"not a readable npz file: {exc}") from None
    if X.ndim != 2:
        raise ConfigError("data.path", path, f"X must be 2-D (samples, features), got shape {X.shape}")
    if y.ndim != 1:
        raise ConfigError("data.path", path, f"y must be 1-D (samples,), got shape {y.shape}")
    if len(X) != len(y):
        raise ConfigError("data.path", path, f"X and y have different lengths: {len(X)} vs {len(y)}")
    if np.iscomplexobj(X) or not np.issubdtype(X.dtype, np.number) or not np.all(np.isfinite(X)):
        raise ConfigError("data.path", path, "X must be real, numeric and finite")
    if np.issubdtype(y.dtype, np.inexact) and not np.all(np.isfinite(y)):
        raise ConfigError("data.path", path, "y holds NaN or infinite labels")
    classes, y_idx = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ConfigError("data.path", path, f"y must contain at least 2 classes, got {classes.tolist()}")
    if np.all(X.std(axis=0) == 0):
        raise ConfigError("data.path", path, "every feature of X is constant: nothing to learn from")
    return X.astype(np.float64), y_idx.astype(np.int64), classes


def stratified_split(
    y: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index arrays (train, val, test): each class is split in the same proportions."""
    for key, frac in (("data.val_fraction", val_fraction), ("data.test_fraction", test_fraction)):
        if not 0.0 < frac < 1.0:
            raise ConfigError(key, frac, "must be in (0, 1)")
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError("data.val_fraction", val_fraction,
                          f"val_fraction + test_fraction must be < 1 (test_fraction={test_fraction})")
    rng = np.random.default_rng(seed)
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = int(round(test_fraction * len(idx)))
        n_val = int(round(val_fraction * len(idx)))
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test:n_test + n_val])
        parts[0].append(idx[n_test + n_val:])
    train, val, test = (np.sort(np.concatenate(p)) for p in parts)
    if len(val) == 0 or len(test) == 0 or len(train) == 0:
        raise ConfigError("data.val_fraction", val_fraction, f"split leaves an empty part ({len(y)} samples)")
    return train, val, test


def prepare(
    name: str, X: np.ndarray, y: np.ndarray, *, val_fraction: float, test_fraction: float,
    split_seed: int, dtype: DTypeLike, source: str = "", labels: np.ndarray | None = None,
) -> Dataset:
    """Split, then standardise every part with the training part's mean and std. ``labels``:
    the original label of each class index (default ``0..k-1``); ``source``: where X came from."""
    train, val, test = stratified_split(y, val_fraction, test_fraction, split_seed)
    mean = X[train].mean(axis=0)
    std = X[train].std(axis=0)
    std[std == 0] = 1.0  # constant features (digits' border pixels) stay at zero
    dt = np.dtype(dtype)

    def scale(idx: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray((X[idx] - mean) / std, dtype=dt)

    return Dataset(
        name=name,
        X_train=scale(train), y_train=y[train],
        X_val=scale(val), y_val=y[val],
        X_test=scale(test), y_test=y[test],
        n_classes=int(y.max()) + 1,
        mean=mean, std=std, labels=np.arange(int(y.max()) + 1) if labels is None else np.asarray(labels),
        source=source, digest=digest(X, y),
    )


def digits(
    *, val_fraction: float, test_fraction: float, split_seed: int, dtype: DTypeLike = np.float64
) -> Dataset:
    """``data=digits``: scikit-learn's bundled handwritten digits."""
    X, y = load_digits()
    return prepare("digits", X, y, val_fraction=val_fraction, test_fraction=test_fraction,
                   split_seed=split_seed, dtype=dtype, source="sklearn.datasets.load_digits")


def synthetic(
    *, n_samples: int, n_classes: int, noise: float, turns: float,
    val_fraction: float, test_fraction: float, split_seed: int, dtype: DTypeLike = np.float64,
) -> Dataset:
    """``data=synthetic``: spirals generated from ``split_seed`` (same seed, same data)."""
    X, y = make_spirals(n_samples, n_classes, noise, turns, seed=split_seed)
    made_by = (f"pipeline.train.data.make_spirals(n_samples={n_samples}, n_classes={n_classes}, noise={noise}, "
               f"turns={turns}, seed={split_seed})")
    return prepare("synthetic", X, y, val_fraction=val_fraction, test_fraction=test_fraction,
                   split_seed=split_seed, dtype=dtype, source=made_by)


def npz(
    *, path: str | None, val_fraction: float, test_fraction: float, split_seed: int,
    dtype: DTypeLike = np.float64,
) -> Dataset:
    """``data=npz data.path=FILE``: a user's arrays ``X`` and ``y`` (loaded without pickle)."""
    X, y, labels = load_npz(path or "")
    return prepare(Path(path or "").stem or "npz", X, y, val_fraction=val_fraction,
                   test_fraction=test_fraction, split_seed=split_seed, dtype=dtype,
                   source=str(Path(path or "").expanduser().resolve()), labels=labels)
