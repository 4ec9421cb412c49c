"""Training throughput: the pipeline's own training step against the same network, data order
and optimizer in PyTorch (CPU, one thread), measured in the same process, interleaved."""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from benchmarks.stats import spread

WIDTH, DEPTH, BATCH, LR, MOMENTUM = 256, 2, 64, 0.05, 0.9


def _batches(n_train: int, steps: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out: list[np.ndarray] = []
    while len(out) < steps:
        perm = rng.permutation(n_train)
        out += [perm[i:i + BATCH] for i in range(0, n_train - BATCH + 1, BATCH)]
    return out[:steps]


def flops_per_step(n_in: int, n_classes: int) -> float:
    """Multiply-adds of the matmuls x 2: forward, dW for every layer, dx for all but the first."""
    sizes = [n_in] + [WIDTH] * DEPTH + [n_classes]
    macs = [BATCH * a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    return 2.0 * (sum(macs) * 2 + sum(macs[1:]))


def ours(X: np.ndarray, y: np.ndarray, batches: list[np.ndarray]) -> float:
    from pipeline.train.nn import MLP, softmax_cross_entropy
    from pipeline.train.optim import SGD
    from plugins.normalization.batch_norm import BatchNorm

    model = MLP(X.shape[1], 10, width=WIDTH, depth=DEPTH, make_norm=lambda n: BatchNorm(n, dtype=np.float32),
                rng=np.random.default_rng(0), dtype=np.float32)
    opt = SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    start = time.perf_counter()
    for idx in batches:
        logits = model.forward(X[idx], training=True)
        _, d = softmax_cross_entropy(logits, y[idx])
        model.backward(d)
        opt.step()
    return len(batches) / (time.perf_counter() - start)


def torch_steps(X: np.ndarray, y: np.ndarray, batches: list[np.ndarray]) -> float:
    import torch

    torch.manual_seed(0)
    layers: list[Any] = []
    fan_in = X.shape[1]
    for _ in range(DEPTH):
        layers += [torch.nn.Linear(fan_in, WIDTH, bias=False), torch.nn.BatchNorm1d(WIDTH, momentum=0.1),
                   torch.nn.ReLU()]
        fan_in = WIDTH
    net = torch.nn.Sequential(*layers, torch.nn.Linear(fan_in, 10))
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    index = [torch.from_numpy(b) for b in batches]
    start = time.perf_counter()
    for idx in index:
        opt.zero_grad(set_to_none=True)
        loss_fn(net(Xt[idx]), yt[idx]).backward()
        opt.step()
    return len(batches) / (time.perf_counter() - start)


def measure(quick: bool) -> dict[str, Any]:
    from threadpoolctl import threadpool_info, threadpool_limits

    from pipeline.train.data import digits

    data = digits(val_fraction=0.15, test_fraction=0.15, split_seed=0, dtype=np.float32)
    X, y = data.X_train, data.y_train
    steps, repeats = (100, 1) if quick else (1500, 7)
    batches = _batches(len(X), steps)
    try:
        import torch

        torch.set_num_threads(1)
        have_torch = True
    except ImportError:
        have_torch = False
    a, b = [], []
    with threadpool_limits(limits=1):
        ours(X, y, batches[:50])  # warm-up
        if have_torch:
            torch_steps(X, y, batches[:50])
        for _ in range(repeats):  # interleaved pairs
            a.append(ours(X, y, batches))
            if have_torch:
                b.append(torch_steps(X, y, batches))
        blas = threadpool_info()
    mine = statistics.median(a)
    out: dict[str, Any] = {
        "train_steps_per_s": mine, "train_steps_per_s_spread": spread(a),
        "train_gflops": mine * flops_per_step(X.shape[1], 10) / 1e9,
        "blas": [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}" for i in blas
                 if i.get("user_api") == "blas"],
    }
    if have_torch:
        theirs = statistics.median(b)
        pairs = [x / t for x, t in zip(a, b, strict=True)]  # interleaved: judged by their median
        out.update(torch_steps_per_s=theirs, train_speedup_vs_torch=statistics.median(pairs),
                   torch_steps_per_s_spread=spread(b), train_speedup_vs_torch_spread=spread(pairs),
                   torch_version=torch.__version__)
    else:
        out.update(torch_steps_per_s=None, train_speedup_vs_torch=None,
                   torch_note="PyTorch not installed: pip install torch (it is never a dependency of pipeline)")
    return out
