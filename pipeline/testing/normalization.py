"""The normalization plugin contract as a pytest suite, run against every YAML the environment
names (``python -m pipeline.testing normalization my_norm.yaml`` sets it), else against this
project's own ``conf/normalization/``: construction, shapes and dtypes, gradients against
finite differences, a pure evaluation mode, finite metrics, parameters read and written in place,
and a state that round-trips through a checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from pipeline.registry import build
from pipeline.testing import configs, shipped
from pipeline.testing.gradients import assert_close, check_layer_gradients
from pipeline.train.normalization import Normalization
from pipeline.train.optim import flatten

YAMLS = configs("normalization")


def make(path: Path, n: int = 4, **kwargs) -> Normalization:
    return build(OmegaConf.load(path), "normalization", num_features=n, **kwargs)


def test_the_plugins_are_found() -> None:
    assert YAMLS, "no YAML to check"
    assert not shipped("normalization") or {"batch_norm", "none"} <= {p.stem for p in YAMLS}


@pytest.fixture(params=YAMLS, ids=[p.stem for p in YAMLS])
def yaml_path(request: pytest.FixtureRequest) -> Path:
    return request.param


def test_contract_attributes(yaml_path: Path) -> None:
    norm = make(yaml_path)
    assert isinstance(norm, Normalization)
    assert isinstance(type(norm).provides_shift, bool)
    assert isinstance(norm.min_batch_size, int) and norm.min_batch_size >= 1
    assert norm.dtype == np.float64  # the default when the model passes none
    assert set(norm.params) == set(norm.grads)
    for key, value in norm.params.items():
        assert norm.grads[key].shape == value.shape and value.dtype == np.float64
    if norm.provides_shift:
        assert norm.params, "a plugin that provides the shift must learn it"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
def test_shapes_and_dtypes(yaml_path: Path, dtype, training: bool) -> None:
    norm = make(yaml_path, 6, dtype=dtype)
    x = np.random.default_rng(0).normal(size=(5, 6)).astype(dtype)
    y = norm.forward(x, training)
    assert y.shape == x.shape and y.dtype == dtype
    dx = norm.backward(np.ones_like(y))
    assert dx.shape == x.shape and dx.dtype == dtype
    for key, value in norm.params.items():
        assert value.dtype == dtype and norm.grads[key].dtype == dtype
    for value in norm.state().values():
        assert value.dtype == dtype


@pytest.mark.parametrize("training", [True, False])
def test_gradients_against_finite_differences(yaml_path: Path, training: bool) -> None:
    rng = np.random.default_rng(1)
    norm = make(yaml_path, 4)
    for value in norm.params.values():
        value[...] = rng.normal(1.0, 0.5, value.shape)
    norm.forward(rng.normal(size=(8, 4)), True)  # give running statistics non-trivial values
    check_layer_gradients(norm, rng.normal(0.5, 2.0, size=(8, 4)), training, rtol=1e-5)


def test_deterministic_and_eval_is_pure(yaml_path: Path) -> None:
    x = np.random.default_rng(2).normal(size=(6, 4))
    a, b = make(yaml_path), make(yaml_path)
    assert_close(a.forward(x, True), b.forward(x, True), rtol=0, atol=0)
    before = {k: v.copy() for k, v in a.state().items()}
    out1 = a.forward(x, False)
    out2 = a.forward(x, False)
    assert_close(out1, out2, rtol=0, atol=0)
    for key, value in a.state().items():
        assert_close(value, before[key], rtol=0, atol=0)


def test_metrics_are_finite_floats(yaml_path: Path) -> None:
    norm = make(yaml_path)
    norm.forward(np.random.default_rng(3).normal(size=(6, 4)), True)
    for key, value in norm.metrics().items():
        assert "/" not in key and isinstance(value, float) and np.isfinite(value)


def test_reads_and_writes_through_its_dicts(yaml_path: Path) -> None:
    """The optimizer rebinds params/grads to views of one flat buffer: a plugin must read
    ``self.params[...]`` and write ``self.grads[...]`` in place, never keep its own references."""
    norm = make(yaml_path, 4)
    if not norm.params:
        pytest.skip("no parameters")
    w, g = flatten([(norm.params, norm.grads)])
    x = np.random.default_rng(4).normal(size=(6, 4))
    before = norm.forward(x, True).copy()
    w += 0.5
    assert not np.allclose(norm.forward(x, True), before)
    norm.backward(np.ones((6, 4)))
    assert np.abs(g).sum() > 0


def test_state_round_trips(yaml_path: Path) -> None:
    """A checkpoint continues training: ``load_state(state())`` of a trained layer puts a fresh
    layer in the same state, so both give the same outputs from then on."""
    x = np.random.default_rng(5).normal(size=(6, 4))
    trained, fresh = make(yaml_path), make(yaml_path)
    for _ in range(3):
        trained.forward(x * 2 + 1, True)
    fresh.load_state(trained.state())
    for key, value in trained.state().items():
        assert_close(fresh.state()[key], value, rtol=0, atol=0)
    assert_close(fresh.forward(x, False), trained.forward(x, False), rtol=0, atol=0)
