"""The normalization plugin contract.

A hidden layer is ``Linear -> Normalization -> ReLU``. A plugin is one class deriving from
:class:`Normalization` plus one YAML file in ``conf/normalization/`` naming it with
``_target_``. The model builds one instance per hidden layer::

    norm = hydra.utils.instantiate(cfg.normalization, num_features=n, dtype=np.float32)

and then only uses what is declared here:

* ``forward(x, training)`` with ``x`` of shape ``(m, n)``, returning ``(m, n)``. In training
  mode it may use batch statistics and update running ones; evaluation mode must not change
  any state.
* ``backward(dy)`` with ``dy`` of shape ``(m, n)``: fills ``grads`` (same keys and shapes as
  ``params``) and returns ``dx`` of shape ``(m, n)``. It refers to the latest ``forward``.
* ``params`` / ``grads``: dicts of arrays, updated in place by the optimizer exactly like the
  linear layers' weights. Anything not learned by gradient descent (running statistics) lives
  outside ``params``. The optimizer rebinds every entry to a view of one flat buffer, so always
  read ``self.params[key]`` and write ``self.grads[key][...]`` (or ``out=``) in place; never keep
  a reference of your own.
* ``provides_shift`` (class attribute): ``True`` when the plugin adds its own learned shift
  (batch norm's ``beta``). The linear layer before it then has no bias, since a bias would be
  cancelled by the normalization or duplicate the shift.
* ``min_batch_size`` (class attribute): the smallest mini-batch ``forward`` accepts in
  training mode; the trainer drops a last partial batch smaller than this.
* ``state()``: non-learned arrays saved with the trained weights (e.g. ``running_mean``,
  ``running_var``); empty by default. ``load_state(arrays)`` puts them back when a checkpoint
  continues training; the default writes each into the array attribute of the same name.
* ``metrics()``: scalars logged to MLflow after every epoch as
  ``<metric_prefix>/layer<i>/<name>`` (batch norm: ``bn/layer0/running_mean_avg``); empty by
  default.

The model calls ``forward_relu(x, training)`` / ``backward_relu(dh)``: normalization followed by
the hidden layer's ReLU. The defaults below compose ``forward``/``backward`` with a numpy ReLU,
so a plugin only writes those two; a plugin may override the pair to fuse the activation into
its own passes (batch norm does, with the kernels of :mod:`pipeline.train.kernels`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
from numpy.typing import DTypeLike


class Normalization(ABC):
    """Base class of normalization plugins; see the module docstring for the contract."""

    provides_shift: ClassVar[bool] = False
    min_batch_size: ClassVar[int] = 1
    metric_prefix: ClassVar[str] = "norm"

    def __init__(self, num_features: int, dtype: DTypeLike = np.float64) -> None:
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)):
            raise ValueError(f"num_features must be an integer, got {num_features!r}")
        if num_features <= 0:
            raise ValueError(f"num_features must be positive, got {num_features}")
        self.num_features = int(num_features)
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise ValueError(f"dtype must be a floating type, got {self.dtype}")
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self._relu_mask: np.ndarray | None = None

    @abstractmethod
    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        """Normalize ``x`` of shape (m, num_features); returns the same shape."""

    @abstractmethod
    def backward(self, dy: np.ndarray) -> np.ndarray:
        """Fill ``self.grads`` from ``dy`` of shape (m, num_features); return ``dx``."""

    def forward_relu(self, x: np.ndarray, training: bool) -> np.ndarray:
        """``max(forward(x), 0)``, (m, n) -> (m, n); remembers the mask for ``backward_relu``."""
        y = self.forward(x, training)
        self._relu_mask = y > 0
        return y * self._relu_mask

    def backward_relu(self, dh: np.ndarray) -> np.ndarray:
        """``backward(dh * mask)``: ``dh`` is the gradient of ``forward_relu``'s output, (m, n)."""
        mask = getattr(self, "_relu_mask", None)  # a plugin may skip our __init__
        if mask is None:
            raise RuntimeError("backward_relu called before forward_relu")
        return self.backward(dh * mask)

    def state(self) -> dict[str, np.ndarray]:
        """Non-learned arrays worth saving and tracking (e.g. running statistics)."""
        return {}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state` (a checkpoint continuing training): by default each key names an
        array attribute, overwritten in place."""
        for key, value in state.items():
            getattr(self, key)[...] = value

    def metrics(self) -> dict[str, float]:
        """Per-epoch scalars for tracking, e.g. summaries of running statistics."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_features={self.num_features}, dtype={self.dtype})"
