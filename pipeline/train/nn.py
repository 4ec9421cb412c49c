"""Numpy layers with manual backprop: ``forward`` caches what ``backward`` needs.

Shapes: ``m`` samples per batch, ``n_in``/``n_out`` features. Every layer exposes ``params`` and
``grads`` dicts with matching keys and shapes; optimizers update all of them the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

import numpy as np
from numpy.typing import DTypeLike

from pipeline.train import kernels
from pipeline.train.normalization import Normalization


class Layer(Protocol):
    params: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray: ...

    def backward(self, dy: np.ndarray) -> np.ndarray: ...


class Linear:
    """``y = x @ W (+ b)`` with ``W`` of shape (n_in, n_out), He-initialised; ``b`` optional."""

    def __init__(
        self, n_in: int, n_out: int, *, bias: bool, rng: np.random.Generator, dtype: DTypeLike
    ) -> None:
        dt = np.dtype(dtype)
        w = rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)
        self.params: dict[str, np.ndarray] = {"W": w.astype(dt)}
        if bias:
            self.params["b"] = np.zeros(n_out, dtype=dt)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._x: np.ndarray | None = None
        self.input_grad = True  # the first layer's dx is never used: the MLP turns it off

    @property
    def has_bias(self) -> bool:
        return "b" in self.params

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        """``x``: (m, n_in) -> (m, n_out)."""
        self._x = x
        y = x @ self.params["W"]
        if "b" in self.params:
            y += self.params["b"]
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        """``dy``: (m, n_out) -> ``dx``: (m, n_in) (``None`` when ``input_grad`` is off); fills ``grads``."""
        if self._x is None:
            raise RuntimeError("backward called before forward")
        np.matmul(self._x.T, dy, out=self.grads["W"])
        if "b" in self.grads:
            np.matmul(kernels.ones(len(dy), dy.dtype), dy, out=self.grads["b"])  # column sums; BLAS beats add.reduce
        if not self.input_grad:
            return None
        # C-ordered, as batch norm's kernel reads it. ((W @ dy.T).T is ~20% faster in OpenBLAS on
        # 256 x 256 but Fortran-ordered, and transposing it back costs as much.)
        return dy @ self.params["W"].T


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise ``exp(z) / sum(exp(z))`` of ``logits`` (m, k), shifted by the row max for range."""
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of ``logits`` (m, k) against integer labels ``y`` (m,).

    Returns ``(loss, dlogits)`` with ``dlogits = (softmax(logits) - onehot(y)) / m``.
    """
    m = logits.shape[0]
    logits = np.ascontiguousarray(logits)
    k = kernels.usable(logits)
    if k is not None and y.ndim == 1 and y.dtype.kind in "iu" and len(y) == m:
        dlogits = np.empty_like(logits)
        return k.softmax_xent(logits, y, logits.dtype.type(1.0 / m), dlogits), dlogits
    rows = np.arange(m)
    probs = logits - logits.max(axis=1, keepdims=True)
    picked = probs[rows, y]
    np.exp(probs, out=probs)
    sum_exp = np.add.reduce(probs, axis=1, keepdims=True)
    loss = float(np.mean(np.log(sum_exp[:, 0]) - picked))
    probs /= sum_exp
    probs[rows, y] -= 1.0
    probs *= 1.0 / m
    return loss, probs


NormFactory = Callable[[int], Normalization]


class MLP:
    """``depth`` hidden blocks ``Linear -> normalization -> ReLU``, then a Linear to ``n_classes``.

    ``make_norm(num_features)`` builds one normalization plugin per hidden layer; when the
    plugin provides its own shift, the Linear before it is built without a bias. ``layers`` is
    ``[Linear, norm] * depth + [Linear]``: each block's ReLU runs inside the plugin's
    ``forward_relu``/``backward_relu`` (a numpy ReLU by default, fused by batch norm).
    """

    def __init__(
        self,
        n_in: int,
        n_classes: int,
        *,
        width: int,
        depth: int,
        make_norm: NormFactory,
        rng: np.random.Generator,
        dtype: DTypeLike = np.float32,
    ) -> None:
        self.dtype = np.dtype(dtype)
        self.layers: list[Layer] = []
        self.norms: list[Normalization] = []
        self._names: list[str] = []
        fan_in = n_in
        for i in range(depth):
            norm = make_norm(width)
            linear = Linear(fan_in, width, bias=not norm.provides_shift, rng=rng, dtype=dtype)
            self.layers += [linear, norm]
            self._names += [f"hidden{i}.linear", f"hidden{i}.norm"]
            self.norms.append(norm)
            fan_in = width
        self.layers.append(Linear(fan_in, n_classes, bias=True, rng=rng, dtype=dtype))
        self._names.append("output")
        self.layers[0].input_grad = False  # nothing upstream of the first layer needs dx
        self.min_batch_size = max((n.min_batch_size for n in self.norms), default=1)
        # bound methods, resolved once: a normalization layer runs with its ReLU
        self._forwards = [layer.forward_relu if isinstance(layer, Normalization) else layer.forward
                          for layer in self.layers]
        self._backwards = [layer.backward_relu if isinstance(layer, Normalization) else layer.backward
                           for layer in reversed(self.layers)]

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        """``x``: (m, n_in) -> logits (m, n_classes)."""
        for forward in self._forwards:
            x = forward(x, training)
        return x

    def backward(self, dlogits: np.ndarray) -> None:
        """Backpropagate ``dlogits`` (m, n_classes); fills every layer's ``grads``."""
        d = dlogits
        for backward in self._backwards:
            d = backward(d)

    def parameters(self) -> list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
        """``(params, grads)`` of every layer that has parameters, in forward order."""
        return [(layer.params, layer.grads) for layer in self.layers if layer.params]

    def named_arrays(self) -> Iterator[tuple[str, np.ndarray]]:
        """Every parameter and plugin state array: ``hidden0.linear.W``, ``hidden0.norm.gamma``,
        ``hidden0.norm.running_mean``, ..., ``output.W``, ``output.b``."""
        for name, layer in zip(self._names, self.layers, strict=True):
            for key, value in layer.params.items():
                yield f"{name}.{key}", value
            if isinstance(layer, Normalization):
                for key, value in layer.state().items():
                    yield f"{name}.{key}", value

    def load_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Put back what :meth:`named_arrays` gave (a saved ``model.npz``), in place."""
        for name, layer in zip(self._names, self.layers, strict=True):
            for key, value in layer.params.items():
                value[...] = arrays[f"{name}.{key}"]
            if isinstance(layer, Normalization):
                layer.load_state({key: arrays[f"{name}.{key}"] for key in layer.state()})
