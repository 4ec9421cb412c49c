"""``normalization=batch_norm``: batch normalization (Ioffe & Szegedy, 2015).

Training mode, per feature over the mini-batch of ``m`` samples::

    mu = mean(z),  var = mean((z - mu)**2)            # biased variance (1/m)
    z_norm = (z - mu) / sqrt(var + eps)
    y = gamma * z_norm + beta                         # gamma starts at 1, beta at 0

Running statistics are exponentially weighted averages with weight ``momentum`` (beta, the
Keras convention)::

    running_mean = beta * running_mean + (1 - beta) * mu
    running_var  = beta * running_var  + (1 - beta) * var * m / (m - 1)   # unbiased, as PyTorch

PyTorch's ``BatchNorm1d(momentum=p)`` is the same update with ``p = 1 - beta``. Evaluation mode
normalizes with the running statistics instead of the batch's. How far apart the two are is
``batch_drift``, logged per epoch: the root mean square, over the epoch's training batches and
the features, of ``(batch mean - running mean) / sqrt(running var + eps)`` with the running
statistics at the epoch's end (those evaluation uses), i.e. how many running standard
deviations a mini-batch's mean typically sits from what evaluation subtracts. A batch of one sample has no
variance, so training mode needs ``m >= 2`` (the trainer drops a last batch of one).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from pipeline.train import kernels
from plugins.normalization.base import Normalization


class BatchNorm(Normalization):
    """Batch normalization over the feature axis of ``(m, num_features)`` inputs."""

    provides_shift = True
    min_batch_size = 2
    metric_prefix = "bn"

    def __init__(
        self,
        num_features: int,
        dtype: DTypeLike = np.float64,
        momentum: float = 0.9,
        eps: float = 1e-5,
    ) -> None:
        super().__init__(num_features, dtype)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1) (running-average weight), got {momentum!r}")
        if not eps > 0.0:
            raise ValueError(f"eps must be positive, got {eps!r}")
        self.momentum = float(momentum)
        self.eps = float(eps)
        n, dt = self.num_features, self.dtype
        self.params = {"gamma": np.ones(n, dtype=dt), "beta": np.zeros(n, dtype=dt)}
        self.grads = {"gamma": np.zeros(n, dtype=dt), "beta": np.zeros(n, dtype=dt)}
        self.running_mean = np.zeros(n, dtype=dt)
        self.running_var = np.ones(n, dtype=dt)
        self.batch_mean = np.zeros(n, dtype=dt)  # statistics of the latest training batch
        self.batch_var = np.ones(n, dtype=dt)
        self._z_norm: np.ndarray | None = None  # cache for backward, shape (m, n)
        self._inv_std: np.ndarray | None = None  # shape (n,)
        self._training = False
        self._fused_out: np.ndarray | None = None  # ReLU output of the fused kernel, (m, n)
        # (m, eps, momentum, 1/m, m/(m-1)) in the kernel's dtype, made once per batch size:
        # converting them every step costs ~2% of a training step
        self._scalars: tuple | None = None
        # per epoch, for batch_drift: the training batches' means summed, and their squares
        # (two vector adds a batch; the abs of each batch against the end-of-epoch statistics
        # would need every batch's mean kept)
        self._batches = 0
        self._mu_sum = np.zeros(n)
        self._mu_sq_sum = np.zeros(n)

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        """``x``: (m, n) pre-activations; returns ``gamma * z_norm + beta``, (m, n)."""
        gamma, beta = self.params["gamma"], self.params["beta"]
        self._fused_out = None
        if training:
            m = x.shape[0]
            if m < self.min_batch_size:
                raise ValueError(f"batch norm needs at least 2 samples per training batch, got {m}")
            ones = kernels.ones(m, x.dtype)  # column sums as matrix-vector products: BLAS beats add.reduce here
            mu = ones @ x
            mu *= 1.0 / m
            z_norm = x - mu  # centred, normalized in place below
            var = ones @ (z_norm * z_norm)
            var *= 1.0 / m
            inv_std = var + self.eps
            np.sqrt(inv_std, out=inv_std)
            np.reciprocal(inv_std, out=inv_std)
            z_norm *= inv_std
            b = self.momentum
            self.running_mean *= b
            self.running_mean += (1.0 - b) * mu
            self.running_var *= b
            self.running_var += ((1.0 - b) * m / (m - 1)) * var  # unbiased, as PyTorch
            self.batch_mean[...] = mu
            self.batch_var[...] = var * (m / (m - 1))
            self._note_batch()
        else:
            inv_std = 1.0 / np.sqrt(self.running_var + self.eps)
            z_norm = (x - self.running_mean) * inv_std
        self._z_norm, self._inv_std, self._training = z_norm, inv_std, training
        y = z_norm * gamma
        y += beta
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """``dy``: (m, n). Closed form; in training mode mu and var depend on every sample."""
        if self._z_norm is None or self._inv_std is None:
            raise RuntimeError("backward called before forward")
        z_norm, inv_std, gamma = self._z_norm, self._inv_std, self.params["gamma"]
        dbeta, dgamma = self.grads["beta"], self.grads["gamma"]
        ones = kernels.ones(dy.shape[0], dy.dtype)
        np.matmul(ones, dy, out=dbeta)
        np.matmul(ones, dy * z_norm, out=dgamma)
        scale = gamma * inv_std
        if not self._training:
            return dy * scale
        # dx = gamma/sqrt(var+eps) * (dy - mean(dy) - z_norm * mean(dy * z_norm)), in one buffer
        m = dy.shape[0]
        dx = z_norm * (dgamma * (-1.0 / m))
        dx += dy
        dx -= dbeta * (1.0 / m)
        dx *= scale
        return dx

    def forward_relu(self, x: np.ndarray, training: bool) -> np.ndarray:
        """``max(forward(x), 0)``; in training mode one fused kernel (two reads of ``x``, one
        write of ``z_norm`` and of the output) when numba is available, else numpy."""
        self._fused_out = None
        if not (training and x.ndim == 2 and len(x) >= self.min_batch_size):
            return super().forward_relu(x, training)
        x = np.ascontiguousarray(x)
        k = kernels.usable(x, self.params["gamma"])  # also: x in the layer's dtype
        if k is None:
            return super().forward_relu(x, training)
        m = len(x)
        if self._scalars is None or self._scalars[0] != m:
            dt = x.dtype.type
            self._scalars = (m, dt(self.eps), dt(self.momentum), dt(1.0 / m), dt(m / (m - 1)))
        _, eps, momentum, inv_m, unbias = self._scalars
        z_norm, out = np.empty_like(x), np.empty_like(x)
        inv_std = np.empty(self.num_features, dtype=x.dtype)
        k.bn_relu_train(x, self.params["gamma"], self.params["beta"], eps, momentum, inv_m, unbias,
                        self.running_mean, self.running_var, self.batch_mean, self.batch_var, inv_std, z_norm, out)
        self._note_batch()
        self._z_norm, self._inv_std, self._training, self._fused_out = z_norm, inv_std, True, out
        return out

    def backward_relu(self, dh: np.ndarray) -> np.ndarray:
        out = self._fused_out
        if out is None:
            return super().backward_relu(dh)
        if dh.dtype != out.dtype or dh.shape != out.shape:  # e.g. a float64 gradient into a float32 layer
            return self.backward(dh * (out > 0))
        dh = np.ascontiguousarray(dh)
        dx = np.empty_like(dh)
        inv_m = self._scalars[3]  # set by the forward_relu that produced ``out``
        kernels.compiled().relu_bn_backward(dh, out, self._z_norm, self.params["gamma"], self._inv_std, inv_m,
                                            self.grads["gamma"], self.grads["beta"], dx)
        return dx

    def state(self) -> dict[str, np.ndarray]:
        return {"running_mean": self.running_mean.copy(), "running_var": self.running_var.copy()}

    def _note_batch(self) -> None:
        self._batches += 1
        self._mu_sum += self.batch_mean
        self._mu_sq_sum += np.square(self.batch_mean, dtype=np.float64)

    def metrics(self) -> dict[str, float]:
        """Averages over features of the running statistics, and ``batch_drift`` over the
        training batches since the last call (logged every epoch; see the module docstring)."""
        out = {
            "running_mean_avg": float(self.running_mean.mean()),
            "running_var_avg": float(self.running_var.mean()),
        }
        if self._batches:
            n, r = self._batches, self.running_mean.astype(np.float64)
            # mean over batches of (mu - r)^2 per feature, from the sums of mu and mu^2
            square = self._mu_sq_sum / n - 2.0 * r * (self._mu_sum / n) + r * r
            out["batch_drift"] = float(np.sqrt(np.mean(np.maximum(square, 0.0) / (self.running_var + self.eps))))
            self._batches = 0
            self._mu_sum[...] = 0.0
            self._mu_sq_sum[...] = 0.0
        return out

    def __repr__(self) -> str:
        return (
            f"BatchNorm(num_features={self.num_features}, dtype={self.dtype}, "
            f"momentum={self.momentum}, eps={self.eps})"
        )
