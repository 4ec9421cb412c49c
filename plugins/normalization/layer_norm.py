"""``normalization=layer_norm``: layer normalization (Ba, Kiros & Hinton, 2016).

Each *sample* is normalized over its features, so it behaves the same in training and
evaluation and works with any batch size (even 1)::

    mu_i = mean_j(z_ij),  var_i = mean_j((z_ij - mu_i)**2)
    y_ij = gamma_j * (z_ij - mu_i) / sqrt(var_i + eps) + beta_j

``gamma``/``beta`` are per feature; ``beta`` is the shift, so the Linear before it has no bias.
A worked example of the plugin contract: this file plus ``conf/normalization/layer_norm.yaml``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from plugins.normalization.base import Normalization


class LayerNorm(Normalization):
    """Per-sample normalization over the feature axis of ``(m, num_features)`` inputs."""

    provides_shift = True
    min_batch_size = 1
    metric_prefix = "ln"

    def __init__(self, num_features: int, dtype: DTypeLike = np.float64, eps: float = 1e-5) -> None:
        super().__init__(num_features, dtype)
        if not eps > 0.0:
            raise ValueError(f"eps must be positive, got {eps!r}")
        self.eps = float(eps)
        n, dt = self.num_features, self.dtype
        self.params = {"gamma": np.ones(n, dtype=dt), "beta": np.zeros(n, dtype=dt)}
        self.grads = {"gamma": np.zeros(n, dtype=dt), "beta": np.zeros(n, dtype=dt)}
        self._z_norm: np.ndarray | None = None  # (m, n)
        self._inv_std: np.ndarray | None = None  # (m, 1)

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        """``x``: (m, n); the same computation in training and evaluation."""
        mu = x.mean(axis=1, keepdims=True)
        z_norm = x - mu
        var = np.einsum("ij,ij->i", z_norm, z_norm)[:, None] / x.shape[1]
        inv_std = 1.0 / np.sqrt(var + self.eps)
        z_norm *= inv_std
        self._z_norm, self._inv_std = z_norm, inv_std
        y = z_norm * self.params["gamma"]
        y += self.params["beta"]
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """``dy``: (m, n). Per row: dx = inv_std * (dz - mean(dz) - z * mean(dz * z)), dz = dy * gamma."""
        if self._z_norm is None or self._inv_std is None:
            raise RuntimeError("backward called before forward")
        z_norm, inv_std = self._z_norm, self._inv_std
        np.add.reduce(dy, axis=0, out=self.grads["beta"])
        np.einsum("ij,ij->j", dy, z_norm, out=self.grads["gamma"])
        dz = dy * self.params["gamma"]
        n = dz.shape[1]
        dx = z_norm * (np.einsum("ij,ij->i", dz, z_norm)[:, None] * (-1.0 / n))
        dx += dz
        dx -= dz.mean(axis=1, keepdims=True)
        dx *= inv_std
        return dx

    def __repr__(self) -> str:
        return f"LayerNorm(num_features={self.num_features}, dtype={self.dtype}, eps={self.eps})"
