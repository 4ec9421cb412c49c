"""The numba kernels against the numpy code they replace (the reference), and against finite
differences: batch norm + ReLU forward/backward, softmax cross-entropy, SGD, and a whole MLP."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import numpy as np
import pytest

from pipeline.testing.gradients import NormReLU, check_layer_gradients
from pipeline.train import kernels
from pipeline.train.nn import MLP, softmax_cross_entropy
from pipeline.train.optim import SGD
from plugins.normalization.base import Normalization
from plugins.normalization.batch_norm import BatchNorm

pytestmark = pytest.mark.skipif(kernels.compiled() is None, reason="numba kernels unavailable")

LAYOUTS = {"C": np.ascontiguousarray, "F": np.asfortranarray}


def _bn_pair(n: int, dtype: type, seed: int = 0) -> tuple[BatchNorm, BatchNorm]:
    rng = np.random.default_rng(seed)
    a, b = BatchNorm(n, dtype=dtype, momentum=0.8), BatchNorm(n, dtype=dtype, momentum=0.8)
    for bn in (a, b):
        bn.params["gamma"][:] = rng.uniform(0.5, 1.5, n) if bn is a else a.params["gamma"]
        bn.params["beta"][:] = rng.normal(0, 0.3, n) if bn is a else a.params["beta"]
    return a, b


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_batch_norm_relu_kernel_matches_numpy(dtype: type, tol: float, layout: str) -> None:
    fast, ref = _bn_pair(37, dtype)
    rng = np.random.default_rng(1)
    for _ in range(3):  # running statistics accumulate over steps
        x = LAYOUTS[layout]((rng.normal(2.0, 3.0, (19, 37))).astype(dtype))
        dh = LAYOUTS[layout](rng.normal(size=(19, 37)).astype(dtype))
        y = fast.forward_relu(x, True)
        with kernels.disabled():
            y_ref = ref.forward_relu(x, True)
            dx_ref = ref.backward_relu(dh)
        dx = fast.backward_relu(dh)
        assert fast._fused_out is not None and ref._fused_out is None  # both paths really ran
        assert y.dtype == dx.dtype == np.dtype(dtype)
        np.testing.assert_allclose(y, y_ref, rtol=tol, atol=tol)
        np.testing.assert_allclose(dx, dx_ref, rtol=tol, atol=tol * 10)
        for key in ("gamma", "beta"):
            np.testing.assert_allclose(fast.grads[key], ref.grads[key], rtol=tol, atol=tol * 10, err_msg=key)
        for key in ("running_mean", "running_var", "batch_mean", "batch_var"):
            np.testing.assert_allclose(getattr(fast, key), getattr(ref, key), rtol=tol, atol=tol, err_msg=key)
    assert (y >= 0).all() and (y == 0).any()  # the ReLU is really applied


def test_batch_norm_relu_kernel_gradients_by_finite_differences() -> None:
    bn, _ = _bn_pair(6, np.float64, seed=3)
    x = np.random.default_rng(4).normal(1.0, 2.0, (9, 6))
    check_layer_gradients(NormReLU(bn), x, training=True, rtol=1e-5)
    check_layer_gradients(NormReLU(bn), np.asfortranarray(x), training=True, rtol=1e-5)


def test_evaluation_mode_uses_running_statistics_not_the_kernel() -> None:
    fast, ref = _bn_pair(5, np.float64)
    x = np.random.default_rng(5).normal(size=(8, 5))
    fast.forward_relu(x, True)
    with kernels.disabled():
        ref.forward_relu(x, True)
    state = {k: v.copy() for k, v in fast.state().items()}
    y = fast.forward_relu(x + 1.0, False)
    np.testing.assert_allclose(y, np.maximum(ref.forward(x + 1.0, False), 0), rtol=1e-12)
    for key, value in fast.state().items():
        np.testing.assert_array_equal(value, state[key])  # evaluation changes nothing


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_kernel_matches_numpy(dtype: type, layout: str) -> None:
    rng = np.random.default_rng(6)
    logits = LAYOUTS[layout]((rng.normal(0, 5, (13, 10))).astype(dtype))
    logits[0, 3] = 80.0  # large logits stay finite (max subtracted)
    y = rng.integers(0, 10, 13)
    loss, d = softmax_cross_entropy(logits, y)
    with kernels.disabled():
        loss_ref, d_ref = softmax_cross_entropy(logits, y)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert loss == pytest.approx(float(loss_ref), rel=tol)
    np.testing.assert_allclose(d, d_ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(d.sum(axis=1), 0.0, atol=tol)  # softmax rows sum to one


def test_softmax_cross_entropy_kernel_rejects_out_of_range_labels() -> None:
    with pytest.raises(IndexError):
        softmax_cross_entropy(np.zeros((3, 4)), np.array([0, 4, 1]))


@pytest.mark.parametrize("momentum, weight_decay", [(0.9, 0.0), (0.0, 0.0), (0.5, 0.01)])
def test_sgd_kernel_matches_numpy(momentum: float, weight_decay: float) -> None:
    rng = np.random.default_rng(7)
    w0 = rng.normal(size=(5, 3))
    groups = [({"W": w0.copy()}, {"W": np.zeros((5, 3))}) for _ in range(2)]
    fast, ref = (SGD([g], lr=0.1, momentum=momentum, weight_decay=weight_decay) for g in groups)
    for _ in range(4):
        grad = rng.normal(size=(5, 3))
        for (_, grads), opt in zip(groups, (fast, ref), strict=True):
            grads["W"][...] = grad
            if opt is ref:
                with kernels.disabled():
                    opt.step()
            else:
                opt.step()
    np.testing.assert_allclose(groups[0][0]["W"], groups[1][0]["W"], rtol=1e-13)
    assert not np.allclose(groups[0][0]["W"], w0)


def test_mlp_training_with_and_without_kernels_agrees() -> None:
    rng = np.random.default_rng(8)
    X, y = rng.normal(size=(96, 12)), rng.integers(0, 4, 96)
    losses = {}
    for fast in (True, False):
        model = MLP(12, 4, width=16, depth=2, make_norm=lambda n: BatchNorm(n, dtype=np.float64),
                    rng=np.random.default_rng(0), dtype=np.float64)
        opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
        out = []
        with kernels.disabled() if not fast else contextlib.nullcontext():
            for start in range(0, 96, 16):
                loss, d = softmax_cross_entropy(model.forward(X[start:start + 16], True), y[start:start + 16])
                model.backward(d)
                opt.step()
                out.append(loss)
        losses[fast] = out
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-10)
    assert losses[True][-1] < losses[True][0]


def test_plugins_without_a_fused_pair_get_the_default_relu() -> None:
    class Scale(Normalization):
        def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
            return 2 * x

        def backward(self, dy: np.ndarray) -> np.ndarray:
            return 2 * dy

    norm = Scale(3)
    x = np.array([[1.0, -1.0, 0.5]])
    np.testing.assert_array_equal(norm.forward_relu(x, True), [[2.0, 0.0, 1.0]])
    np.testing.assert_array_equal(norm.backward_relu(np.ones((1, 3))), [[2.0, 0.0, 2.0]])


def test_pipeline_jit_0_switches_the_kernels_off() -> None:
    code = "from pipeline import kernels; print(kernels.compiled() is None)"
    env = {**os.environ, "PIPELINE_JIT": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
