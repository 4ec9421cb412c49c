"""Regenerate ``batchnorm_torch_reference.npz``: PyTorch's BatchNorm1d on fixed inputs.

Run with PyTorch installed (it is not a dependency of pipeline):
    python tests/data/make_torch_reference.py
The tests compare pipeline's batch norm against these numbers in float64, and against live
PyTorch as well when it is importable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def reference(steps: int = 3, m: int = 8, n: int = 5, beta: float = 0.9, eps: float = 1e-5) -> dict:
    import torch

    rng = np.random.default_rng(1234)
    xs = rng.normal(2.0, 3.0, size=(steps, m, n))
    dys = rng.normal(size=(steps, m, n))
    gamma = rng.uniform(0.5, 1.5, n)
    shift = rng.normal(size=n)
    x_eval = rng.normal(2.0, 3.0, size=(m, n))
    bn = torch.nn.BatchNorm1d(n, eps=eps, momentum=1.0 - beta, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(gamma))
        bn.bias.copy_(torch.from_numpy(shift))
    out = {"xs": xs, "dys": dys, "gamma": gamma, "beta": shift, "x_eval": x_eval,
           "momentum": np.float64(beta), "eps": np.float64(eps)}
    bn.train()
    ys, dxs, dgammas, dbetas, rms, rvs = [], [], [], [], [], []
    for x, dy in zip(xs, dys, strict=True):
        xt = torch.from_numpy(x).requires_grad_(True)
        bn.zero_grad()
        y = bn(xt)
        y.backward(torch.from_numpy(dy))
        ys.append(y.detach().numpy())
        dxs.append(xt.grad.numpy())
        dgammas.append(bn.weight.grad.numpy().copy())
        dbetas.append(bn.bias.grad.numpy().copy())
        rms.append(bn.running_mean.numpy().copy())
        rvs.append(bn.running_var.numpy().copy())
    bn.eval()
    with torch.no_grad():
        y_eval = bn(torch.from_numpy(x_eval)).numpy()
    out.update(ys=np.array(ys), dxs=np.array(dxs), dgammas=np.array(dgammas), dbetas=np.array(dbetas),
               running_means=np.array(rms), running_vars=np.array(rvs), y_eval=y_eval)
    return out


if __name__ == "__main__":
    target = Path(__file__).with_name("batchnorm_torch_reference.npz")
    np.savez(target, **reference())
    print(f"wrote {target}")
