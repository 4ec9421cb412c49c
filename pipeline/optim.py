"""Optimizers over a list of ``(params, grads)`` dict pairs, updating arrays in place."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ParamGroups = Sequence[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]


class Optimizer:
    """Base: ``step()`` applies one update to every array in every ``params`` dict."""

    def __init__(self, params: ParamGroups, lr: float) -> None:
        if not (isinstance(lr, (int, float)) and np.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        self.lr = float(lr)
        self.pairs = [(p[k], g[k]) for p, g in params for k in p]

    def step(self) -> None:
        raise NotImplementedError


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
        self.velocity = [np.zeros_like(w) for w, _ in self.pairs]

    def step(self) -> None:
        mu, lr, wd = self.momentum, self.lr, self.weight_decay
        for (w, g), v in zip(self.pairs, self.velocity, strict=True):
            if wd:
                g = g + wd * w
            if mu:
                v *= mu
                v += g
                g = v
            w -= lr * g


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
        self.m = [np.zeros_like(w) for w, _ in self.pairs]
        self.v = [np.zeros_like(w) for w, _ in self.pairs]
        self.t = 0

    def step(self) -> None:
        self.t += 1
        b1, b2, wd = self.beta1, self.beta2, self.weight_decay
        # Fold both bias corrections into the step size and eps (same maths, fewer passes).
        c1, c2 = 1.0 - b1**self.t, 1.0 - b2**self.t
        step_size = self.lr / c1
        eps_hat = self.eps * np.sqrt(c2)
        for (w, g), m, v in zip(self.pairs, self.m, self.v, strict=True):
            if wd:
                g = g + wd * w
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * (g * g)
            w -= step_size * m / (np.sqrt(v) + eps_hat) * np.sqrt(c2)
