"""Layers and the whole network against finite differences (float64)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.testing.gradients import NormReLU, assert_close, check_layer_gradients, numerical_grad
from pipeline.train.nn import MLP, Linear, softmax_cross_entropy
from plugins.normalization.batch_norm import BatchNorm
from plugins.normalization.none import NoNormalization


def _layer_gradcheck(layer, x: np.ndarray, training: bool = True) -> None:
    check_layer_gradients(layer, x, training)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradients(bias: bool) -> None:
    rng = np.random.default_rng(0)
    layer = Linear(4, 3, bias=bias, rng=rng, dtype=np.float64)
    assert ("b" in layer.params) == bias
    _layer_gradcheck(layer, rng.normal(size=(5, 4)))


def test_linear_forward_values() -> None:
    layer = Linear(2, 2, bias=True, rng=np.random.default_rng(0), dtype=np.float64)
    layer.params["W"][...] = [[1.0, 2.0], [3.0, 4.0]]
    layer.params["b"][...] = [0.5, -0.5]
    out = layer.forward(np.array([[1.0, 1.0], [2.0, 0.0]]), training=True)
    assert_close(out, np.array([[4.5, 5.5], [2.5, 3.5]]))


def test_he_initialisation_scale() -> None:
    layer = Linear(400, 300, bias=False, rng=np.random.default_rng(0), dtype=np.float64)
    assert layer.params["W"].std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)


def test_default_relu_gradient() -> None:
    """The ReLU every plugin gets from the base class (``forward_relu``/``backward_relu``)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 4))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink
    norm = NoNormalization(4)
    _layer_gradcheck(NormReLU(norm), x)
    assert_close(norm.forward_relu(x, True), np.maximum(x, 0))


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradients(training: bool) -> None:
    rng = np.random.default_rng(2)
    bn = BatchNorm(4, dtype=np.float64)
    bn.params["gamma"][...] = rng.uniform(0.5, 2.0, 4)
    bn.params["beta"][...] = rng.normal(size=4)
    bn.running_mean[...] = rng.normal(size=4)
    bn.running_var[...] = rng.uniform(0.5, 2.0, 4)
    x = rng.normal(1.0, 2.0, size=(6, 4))
    if training:
        # running statistics change on every training forward; check against a frozen copy
        frozen = (bn.running_mean.copy(), bn.running_var.copy())
        _layer_gradcheck(bn, x, training=True)
        assert not np.allclose(bn.running_mean, frozen[0])
    else:
        _layer_gradcheck(bn, x, training=False)


def test_no_normalization_is_identity() -> None:
    x = np.random.default_rng(3).normal(size=(5, 3))
    norm = NoNormalization(3)
    assert norm.forward(x, True) is x
    _layer_gradcheck(norm, x)


def test_softmax_cross_entropy_values_and_gradient() -> None:
    logits = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    y = np.array([2, 0])
    loss, dlogits = softmax_cross_entropy(logits, y)
    p0 = np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum()
    expected = (-np.log(p0[2]) - np.log(1 / 3)) / 2
    assert loss == pytest.approx(expected, rel=1e-12)
    assert_close(dlogits, numerical_grad(lambda: softmax_cross_entropy(logits, y)[0], logits))
    # numerically stable for huge logits
    big_loss, big_grad = softmax_cross_entropy(np.array([[1000.0, 0.0]]), np.array([0]))
    assert big_loss == pytest.approx(0.0, abs=1e-12) and np.all(np.isfinite(big_grad))


@pytest.mark.parametrize("norm_cls", [BatchNorm, NoNormalization])
def test_whole_network_loss_gradient(norm_cls) -> None:
    rng = np.random.default_rng(4)
    model = MLP(5, 3, width=6, depth=2, make_norm=lambda n: norm_cls(n, dtype=np.float64),
                rng=rng, dtype=np.float64)
    x = rng.normal(size=(8, 5))
    y = rng.integers(0, 3, 8)

    def loss() -> float:
        return softmax_cross_entropy(model.forward(x, training=True), y)[0]

    loss()
    model.backward(softmax_cross_entropy(model.forward(x, training=True), y)[1])
    analytic = [{k: g.copy() for k, g in grads.items()} for _, grads in model.parameters()]
    for (params, _), grads in zip(model.parameters(), analytic, strict=True):
        for key, value in params.items():
            assert_close(grads[key], numerical_grad(loss, value), rtol=1e-5, atol=1e-8)


def test_bias_is_structural() -> None:
    """Batch norm provides the shift, so its Linear has no bias; with none it has one."""
    rng = np.random.default_rng(5)
    bn_model = MLP(4, 2, width=3, depth=2, make_norm=lambda n: BatchNorm(n), rng=rng)
    plain = MLP(4, 2, width=3, depth=2, make_norm=lambda n: NoNormalization(n), rng=rng)
    hidden = [layer for layer in bn_model.layers[:-1] if isinstance(layer, Linear)]
    assert hidden and all(not layer.has_bias for layer in hidden)
    assert all(layer.has_bias for layer in plain.layers if isinstance(layer, Linear))
    assert bn_model.layers[-1].has_bias  # the output layer keeps its bias
    names = dict(bn_model.named_arrays())
    assert "hidden0.linear.b" not in names and "hidden0.norm.beta" in names
    assert "hidden1.norm.running_var" in names and "output.b" in names
    assert bn_model.min_batch_size == 2 and plain.min_batch_size == 1


def test_float32_stays_float32() -> None:
    rng = np.random.default_rng(6)
    model = MLP(4, 3, width=5, depth=2, make_norm=lambda n: BatchNorm(n, dtype=np.float32),
                rng=rng, dtype=np.float32)
    x = rng.normal(size=(7, 4)).astype(np.float32)
    logits = model.forward(x, training=True)
    _, d = softmax_cross_entropy(logits, rng.integers(0, 3, 7))
    model.backward(d)
    assert logits.dtype == np.float32
    for params, grads in model.parameters():
        for key in params:
            assert params[key].dtype == np.float32 and grads[key].dtype == np.float32


def test_load_arrays_puts_back_what_named_arrays_gave() -> None:
    """A model rebuilt from a saved model.npz (weights and running statistics) computes the same
    evaluation-mode outputs; a freshly initialised one does not."""
    rng = np.random.default_rng(8)
    trained = MLP(4, 3, width=5, depth=2, make_norm=lambda n: BatchNorm(n), rng=rng, dtype=np.float64)
    x = rng.normal(size=(16, 4))
    for _ in range(3):  # training-mode passes move the running statistics off their start
        trained.forward(x + rng.normal(size=x.shape), training=True)
    saved = {k: v.copy() for k, v in trained.named_arrays()}
    rebuilt = MLP(4, 3, width=5, depth=2, make_norm=lambda n: BatchNorm(n), rng=np.random.default_rng(9),
                  dtype=np.float64)
    assert not np.allclose(rebuilt.forward(x, training=False), trained.forward(x, training=False))
    rebuilt.load_arrays(saved)
    np.testing.assert_array_equal(rebuilt.forward(x, training=False), trained.forward(x, training=False))
    assert all(np.array_equal(v, saved[k]) for k, v in rebuilt.named_arrays())
