"""Data loading, the stratified split and training-set standardisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import ConfigError
from pipeline.train import data


def test_digits_is_the_bundled_set() -> None:
    X, y = data.load_digits()
    assert X.shape == (1797, 64) and y.shape == (1797,)
    assert set(np.unique(y)) == set(range(10))
    from sklearn.datasets import load_digits

    np.testing.assert_array_equal(X, load_digits().data)


def test_split_is_stratified_disjoint_and_seeded() -> None:
    y = np.repeat(np.arange(4), 50)
    train, val, test = data.stratified_split(y, 0.2, 0.1, seed=3)
    assert len(set(train) | set(val) | set(test)) == 200
    assert not (set(train) & set(val) or set(train) & set(test) or set(val) & set(test))
    assert np.bincount(y[val]).tolist() == [10] * 4 and np.bincount(y[test]).tolist() == [5] * 4
    again = data.stratified_split(y, 0.2, 0.1, seed=3)
    other = data.stratified_split(y, 0.2, 0.1, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again, strict=True))
    assert not np.array_equal(val, other[1])


def test_standardised_with_training_statistics_only() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(300, 3))
    X[:, 2] = 7.0  # a constant feature stays finite
    y = np.arange(300) % 3
    ds = data.prepare("t", X, y, val_fraction=0.2, test_fraction=0.2, split_seed=0, dtype=np.float32)
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.X_train[:, :2].std(axis=0), 1.0, rtol=1e-5)
    assert np.all(ds.X_train[:, 2] == 0) and ds.X_train.dtype == np.float32
    # validation rows are shifted by the *training* mean, not their own
    train, val, _ = data.stratified_split(y, 0.2, 0.2, 0)
    expected = (X[val, 0] - X[train, 0].mean()) / X[train, 0].std()
    np.testing.assert_allclose(ds.X_val[:, 0], expected, rtol=1e-5)
    assert ds.n_classes == 3 and ds.n_features == 3


def test_synthetic_spirals_are_seeded() -> None:
    a = data.synthetic(n_samples=300, n_classes=3, noise=0.1, turns=1.0,
                       val_fraction=0.2, test_fraction=0.2, split_seed=1)
    b = data.synthetic(n_samples=300, n_classes=3, noise=0.1, turns=1.0,
                       val_fraction=0.2, test_fraction=0.2, split_seed=1)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert a.n_classes == 3 and a.n_features == 2


def test_npz_round_trip_remaps_labels(tmp_path: Path) -> None:
    path = tmp_path / "mine.npz"
    rng = np.random.default_rng(0)
    np.savez(path, X=rng.normal(size=(60, 3)), y=np.repeat([10, 20, 30], 20))
    ds = data.npz(path=str(path), val_fraction=0.2, test_fraction=0.2, split_seed=0)
    assert ds.name == "mine" and ds.n_classes == 3
    assert set(np.unique(ds.y_train)) == {0, 1, 2}


@pytest.mark.parametrize("arrays, message", [
    ({"X": np.zeros((4, 2))}, "no array y"),
    ({"y": np.zeros(4)}, "no array X"),
    ({"X": np.zeros((4, 2)), "y": np.zeros(5)}, "different lengths: 4 vs 5"),
    ({"X": np.zeros(4), "y": np.zeros(4)}, "X must be 2-D"),
    ({"X": np.zeros((4, 2)), "y": np.zeros(4)}, "at least 2 classes"),
    ({"X": np.array([[1, None]], dtype=object), "y": np.array([0])}, "without pickle"),
])
def test_bad_npz_files_name_the_key(tmp_path: Path, arrays: dict, message: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ConfigError, match=message) as info:
        data.load_npz(str(path))
    assert info.value.key == "data.path" and str(path) in str(info.value)


def test_missing_npz_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found") as info:
        data.load_npz(str(tmp_path / "nope.npz"))
    assert "data.path=" in str(info.value) and "nope.npz" in str(info.value)


@pytest.mark.parametrize("val, test", [(0.0, 0.1), (0.5, 0.5), (1.2, 0.1)])
def test_bad_fractions(val: float, test: float) -> None:
    with pytest.raises(ConfigError, match="fraction"):
        data.stratified_split(np.arange(100) % 2, val, test, 0)
