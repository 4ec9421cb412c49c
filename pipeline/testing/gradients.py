"""Gradients checked against central finite differences: what the normalization contract suite
(and this project's own layer tests) use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def numerical_grad(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar ``f()`` with respect to ``x`` (perturbed in place)."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        up = f()
        x[i] = old - eps
        down = f()
        x[i] = old
        grad[i] = (up - down) / (2 * eps)
    return grad


def assert_close(actual: np.ndarray, expected: np.ndarray, rtol: float = 1e-6, atol: float = 1e-9) -> None:
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def check_layer_gradients(layer: Any, x: np.ndarray, training: bool = True, rtol: float = 1e-6, seed: int = 7) -> None:
    """Backward of ``layer`` against central differences of ``sum(forward(x) * r)``: ``dx`` and
    every entry of ``grads``."""
    r = np.random.default_rng(seed).normal(size=layer.forward(x, training).shape)

    def loss() -> float:
        return float(np.sum(layer.forward(x, training) * r))

    loss()
    dx = layer.backward(r)
    grads = {k: g.copy() for k, g in layer.grads.items()}
    if dx is not None:
        assert_close(dx, numerical_grad(loss, x), rtol=rtol, atol=1e-8)
    for key, value in layer.params.items():
        assert_close(grads[key], numerical_grad(loss, value), rtol=rtol, atol=1e-8)


class NormReLU:
    """A normalization plugin's ``forward_relu``/``backward_relu`` pair seen as one layer, for
    :func:`check_layer_gradients`."""

    def __init__(self, norm: Any) -> None:
        self.norm, self.params, self.grads = norm, norm.params, norm.grads

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        return self.norm.forward_relu(x, training)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return self.norm.backward_relu(dy)
