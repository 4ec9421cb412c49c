"""Fused training kernels, compiled with numba on first use.

Why: on the benchmark network (64-256-256-10, batch 64) a numpy call over a (64, 256) array costs
2-4 µs whatever it does, and batch norm + ReLU took about 15 such calls per layer and direction,
softmax cross-entropy a dozen more on a (64, 10) array, and SGD four passes over every weight.
Each kernel below is one or two passes over memory instead; the matrix products stay in BLAS.

The numpy code they replace stays as the readable reference and the fallback: ``compiled()``
returns ``None`` when numba is not installed or ``PIPELINE_JIT=0`` is set, and the callers then
take their numpy path (tests run both and compare them). Kernels are compiled lazily, once per
process and dtype, and cached on disk by numba (``__pycache__``), so a worker pays the
compilation (about a second) only the first time; scalars are passed in the arrays' dtype so
float32 kernels never round-trip through float64.

Layout: every 2-D array is (m, n) C-contiguous, so the kernels walk memory sequentially and
vectorise across features. (A feature-major layout was measured too: OpenBLAS's products get
~10 µs cheaper per step, the kernels as much dearer.)

Fast-math: only reassociation (vectorised sums), FMA contraction and no-signed-zeros. NaN and
inf keep their IEEE meaning, so a diverging trial still reports a non-finite loss.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np

_FASTMATH = {"reassoc", "contract", "nsz"}
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _bn_relu_train(x, gamma, beta, eps, momentum, inv_m, unbias, running_mean, running_var,  # pragma: no cover
                   batch_mean, batch_var, inv_std, z_norm, out):
    """Batch norm (training mode) then ReLU. ``x``, ``z_norm``, ``out``: (m, n) C-contiguous;
    the rest (n,). Writes the batch statistics (variance unbiased), updates the running ones."""
    m, n = x.shape
    mu, var = batch_mean, batch_var
    for j in range(n):
        mu[j] = 0
        var[j] = 0
    for i in range(m):  # row by row: every pass is sequential and vectorises across features
        for j in range(n):
            mu[j] += x[i, j]
    for j in range(n):
        mu[j] *= inv_m
    for i in range(m):  # centred second pass: no cancellation when |mean| >> std
        for j in range(n):
            c = x[i, j] - mu[j]
            var[j] += c * c
    keep = 1 - momentum
    for j in range(n):
        v = var[j] * inv_m  # biased, for normalising
        inv_std[j] = 1 / np.sqrt(v + eps)
        var[j] = v * unbias
        running_mean[j] = momentum * running_mean[j] + keep * mu[j]
        running_var[j] = momentum * running_var[j] + keep * var[j]
    for i in range(m):
        for j in range(n):
            zn = (x[i, j] - mu[j]) * inv_std[j]
            z_norm[i, j] = zn
            out[i, j] = max(zn * gamma[j] + beta[j], 0)


def _relu_bn_backward(dout, out, z_norm, gamma, inv_std, inv_m, dgamma, dbeta, dx):  # pragma: no cover
    """Backward of ``_bn_relu_train``: ``dout``, ``out``, ``z_norm``, ``dx``: (m, n) C-contiguous.
    ``dz = dout * (out > 0)``; ``dx = gamma * inv_std * (dz - mean(dz) - z_norm * mean(dz * z_norm))``."""
    m, n = dout.shape
    for j in range(n):
        dgamma[j] = 0
        dbeta[j] = 0
    for i in range(m):
        for j in range(n):
            g = dout[i, j] * (out[i, j] > 0)  # branch-free: a data-dependent branch costs 5x here
            dbeta[j] += g
            dgamma[j] += g * z_norm[i, j]
    scale = gamma * inv_std
    a = -scale * dgamma * inv_m
    b = -scale * dbeta * inv_m
    for i in range(m):
        for j in range(n):
            g = dout[i, j] * (out[i, j] > 0)
            dx[i, j] = g * scale[j] + z_norm[i, j] * a[j] + b[j]


def _sgd(w, g, v, lr, momentum, weight_decay):  # pragma: no cover
    """``v = momentum * v + (g + weight_decay * w)``; ``w -= lr * v``; all 1-D, one pass."""
    for k in range(w.shape[0]):
        vk = momentum * v[k] + g[k] + weight_decay * w[k]
        v[k] = vk
        w[k] -= lr * vk


def _softmax_xent(logits, y, inv_m, dlogits):  # pragma: no cover
    """Mean cross-entropy of ``logits`` (m, k) against labels ``y`` (m,); writes
    ``dlogits = (softmax - onehot) / m`` and returns the loss (accumulated in float64)."""
    m, k = logits.shape
    total = 0.0
    for i in range(m):
        label = y[i]
        if label < 0 or label >= k:
            raise IndexError("label out of range")
        top = logits[i, 0]
        for j in range(1, k):
            top = max(top, logits[i, j])
        s = 0.0
        for j in range(k):
            e = math.exp(logits[i, j] - top)
            dlogits[i, j] = e
            s += e
        total += math.log(s) - (logits[i, label] - top)
        r = inv_m / s
        for j in range(k):
            dlogits[i, j] *= r
        dlogits[i, label] -= inv_m
    return total / m


_ONES: dict[tuple[int, np.dtype], np.ndarray] = {}


def ones(m: int, dtype: np.dtype) -> np.ndarray:
    """A cached vector of ``m`` ones (do not write to it): ``ones @ a`` sums the columns of
    ``a`` (m, n) as a BLAS matrix-vector product, faster than ``np.add.reduce`` at these sizes."""
    key = (m, np.dtype(dtype))
    if key not in _ONES:
        _ONES[key] = np.ones(m, dtype=dtype)
    return _ONES[key]


@functools.cache
def compiled() -> SimpleNamespace | None:
    """The jitted kernels, or ``None`` (numba missing, or ``PIPELINE_JIT=0``)."""
    if os.environ.get("PIPELINE_JIT", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    try:
        import numba
    except ImportError:
        return None
    jit = numba.njit(cache=True, nogil=True, fastmath=_FASTMATH)
    return SimpleNamespace(
        bn_relu_train=jit(_bn_relu_train),
        relu_bn_backward=jit(_relu_bn_backward),
        sgd=jit(_sgd),
        softmax_xent=jit(_softmax_xent),
    )


_disabled = 0


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Within this block every caller takes its numpy path (the reference the kernels are tested
    and benchmarked against)."""
    global _disabled
    _disabled += 1
    try:
        yield
    finally:
        _disabled -= 1


def usable(*arrays: np.ndarray) -> SimpleNamespace | None:
    """The kernels when every array is C-contiguous and shares one float dtype the kernels
    support; ``None`` otherwise (callers then use numpy)."""
    k = None if _disabled else compiled()
    if k is None:
        return None
    dt = arrays[0].dtype
    if dt not in DTYPES:
        return None
    for a in arrays:
        if a.dtype != dt or not a.flags.c_contiguous:
            return None
    return k
