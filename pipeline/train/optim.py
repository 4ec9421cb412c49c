"""Optimizers over a list of ``(params, grads)`` dict pairs, updating arrays in place.

On construction every parameter and every gradient is moved into one contiguous buffer each and
the layers' dicts are rebound to views of it, so a step is a handful of vectorised operations
whatever the number of arrays (layers must read ``self.params[...]`` / write ``self.grads[...]``
in place, never keep their own references: the normalization contract says so)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.train import kernels

ParamGroups = Sequence[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]


class Optimizer:
    """Base: ``step()`` applies one update to every array in every ``params`` dict."""

    def __init__(self, params: ParamGroups, lr: float) -> None:
        if not (isinstance(lr, (int, float)) and np.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        self.lr = float(lr)
        self.w, self.g = flatten(params)

    def step(self) -> None:
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:
        """What a step depends on besides the weights (momentum buffers, step counts), to save
        in a checkpoint; empty for a stateless optimizer."""
        return {}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state` in place (the buffers keep their identity)."""
        for key, value in state.items():
            current = getattr(self, key)
            if isinstance(current, np.ndarray):
                current[...] = value
            else:
                setattr(self, key, type(current)(value))


def flatten(params: ParamGroups) -> tuple[np.ndarray, np.ndarray]:
    """One buffer for all parameters and one for all gradients; rebinds every dict entry to a
    view of them (values are kept). Returns ``(weights, grads)``, both 1-D."""
    entries = [(p, g, k) for p, g in params for k in p]
    if not entries:
        return np.zeros(0), np.zeros(0)
    dtypes = {p[k].dtype for p, _, k in entries}
    if len(dtypes) > 1:
        raise ValueError(f"all parameters must share one dtype, got {sorted(map(str, dtypes))}")
    total = sum(p[k].size for p, _, k in entries)
    flat_w = np.empty(total, dtype=dtypes.pop())
    flat_g = np.zeros_like(flat_w)
    offset = 0
    for p, g, k in entries:
        shape, n = p[k].shape, p[k].size
        flat_w[offset:offset + n] = p[k].ravel()
        flat_g[offset:offset + n] = g[k].ravel()
        p[k] = flat_w[offset:offset + n].reshape(shape)
        g[k] = flat_g[offset:offset + n].reshape(shape)
        offset += n
    return flat_w, flat_g


class SGD(Optimizer):
    """SGD with momentum in PyTorch's form: ``v = momentum * v + g``; ``w -= lr * v``.

    ``weight_decay`` adds ``weight_decay * w`` to ``g`` (L2, applied to every parameter).
    """

    def __init__(
        self, params: ParamGroups, lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 0.0
    ) -> None:
        super().__init__(params, lr)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.velocity = np.zeros_like(self.w)
        self._tmp = np.empty_like(self.w)

    def state(self) -> dict[str, np.ndarray]:
        return {"velocity": self.velocity.copy()}

    def step(self) -> None:
        w, g, v, tmp = self.w, self.g, self.velocity, self._tmp
        k = kernels.usable(w, g, v)
        if k is not None:  # one fused pass instead of four
            dt = w.dtype.type
            k.sgd(w, g, v, dt(self.lr), dt(self.momentum), dt(self.weight_decay))
            return
        if self.weight_decay:
            np.multiply(w, self.weight_decay, out=tmp)
            tmp += g
            g = tmp
        if self.momentum:
            v *= self.momentum
            v += g
            g = v
        np.multiply(g, self.lr, out=tmp)
        w -= tmp


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, as ``torch.optim.Adam``."""

    def __init__(
        self,
        params: ParamGroups,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        for name, beta in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {beta!r}")
        if not eps > 0:
            raise ValueError(f"eps must be positive, got {eps!r}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.weight_decay = float(weight_decay)
        self.m = np.zeros_like(self.w)
        self.v = np.zeros_like(self.w)
        self._tmp = np.empty_like(self.w)
        self.t = 0

    def state(self) -> dict[str, np.ndarray]:
        return {"m": self.m.copy(), "v": self.v.copy(), "t": np.array(self.t)}

    def step(self) -> None:
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        w, g, m, v, tmp = self.w, self.g, self.m, self.v, self._tmp
        if self.weight_decay:
            g = g + self.weight_decay * w
        # Fold both bias corrections into the step size and eps (same maths, fewer passes).
        c1, c2 = 1.0 - b1**self.t, 1.0 - b2**self.t
        m *= b1
        m += (1.0 - b1) * g
        v *= b2
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - b2
        v += tmp
        np.sqrt(v, out=tmp)
        tmp += self.eps * np.sqrt(c2)
        np.divide(m, tmp, out=tmp)
        tmp *= self.lr * np.sqrt(c2) / c1
        w -= tmp
