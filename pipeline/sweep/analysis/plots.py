"""PNG figures for a sweep's parent MLflow run (matplotlib, headless), drawn once after the
sweep rather than in every trial (importing matplotlib alone costs most of a short trial)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.search.space import Choice, Interval


def _pyplot() -> Any:
    import logging

    import matplotlib

    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # not its one-time font-cache note
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _axis_value(scale: str, x: Any) -> float:
    return 1.0 - float(x) if scale == "log1m" else float(x)


def zoom_figure(rounds: Sequence[Mapping[str, Any]], scale_of: Callable[[Interval], str], path: Path,
                metric: str = "objective") -> None:
    """Rows = rounds, columns = parameters: each round's objective against each parameter, the
    round's sampled range shaded and the next round's zoomed range dashed. ``rounds`` items have
    ``space`` (SearchSpace), ``next_space`` and ``trials`` (dicts with ``params``, ``value``).
    log-scale parameters get a log axis; log1m parameters are drawn as 1 - x on a log axis."""
    plt = _pyplot()
    dims = list(rounds[0]["space"].dims)
    values = [t["value"] for r in rounds for t in r["trials"] if t["value"] is not None]
    log_y = bool(values) and min(values) > 0 and max(values) / min(values) > 20
    fig, axes = plt.subplots(len(rounds), len(dims), figsize=(3.2 * len(dims), 2.4 * len(rounds) + 0.6),
                             squeeze=False, sharey=True)
    for i, record in enumerate(rounds):
        ok = [t for t in record["trials"] if t["value"] is not None and math.isfinite(t["value"])]
        for j, dim in enumerate(dims):
            ax = axes[i][j]
            current, nxt = record["space"].dim(dim.key), record["next_space"].dim(dim.key)
            if isinstance(dim, Choice):
                cats = list(dim.values)
                xs = [cats.index(str(t["params"][dim.key])) for t in ok]
                ax.scatter(xs, [t["value"] for t in ok], s=14, alpha=0.8)
                ax.set_xticks(range(len(cats)), cats, fontsize=7)
                for k, c in enumerate(cats):
                    if c not in current.values:
                        ax.axvspan(k - 0.4, k + 0.4, color="0.85", zorder=0)
            else:
                scale = scale_of(dim) if isinstance(dim, Interval) else "linear"
                xs = [_axis_value(scale, t["params"][dim.key]) for t in ok]
                ax.scatter(xs, [t["value"] for t in ok], s=14, alpha=0.8)
                lo, hi = sorted(_axis_value(scale, v) for v in _span(current))
                ax.axvspan(lo, hi, color="#3b75af", alpha=0.08, zorder=0)
                for v in _span(nxt):
                    ax.axvline(_axis_value(scale, v), color="#d62728", ls="--", lw=1)
                if scale in ("log", "log1m"):
                    from matplotlib.ticker import NullFormatter

                    ax.set_xscale("log")
                    ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap on narrow ranges
                if i == len(rounds) - 1:
                    ax.set_xlabel(f"1 - {dim.key}" if scale == "log1m" else dim.key, fontsize=8)
            if log_y:
                ax.set_yscale("log")
            if j == 0:
                ax.set_ylabel(f"round {record['round']}\n{metric}", fontsize=8)
            if i == 0:
                ax.set_title(dim.key, fontsize=9)
            ax.tick_params(labelsize=7)
    fig.suptitle("Coarse to fine: shaded = range sampled in the round, dashed red = next round's zoom", fontsize=9)
    fig.tight_layout()
    _save(fig, plt, path)


def _span(dim: Any) -> tuple[float, float]:
    if isinstance(dim, Interval):
        return float(dim.low), float(dim.high)
    vals = dim.values
    return float(vals[0]), float(vals[-1])


def sampler_figure(path: Path, n: int = 2000, seed: int = 0) -> None:
    """The seed's point: a learning rate in [1e-4, 1] sampled uniformly puts ~90% of trials in
    [0.1, 1]; log-uniformly, ~25% in each decade."""
    plt = _pyplot()
    rng = np.random.default_rng(seed)
    uniform = rng.uniform(1e-4, 1, n)
    logu = 10 ** rng.uniform(-4, 0, n)
    bins = np.logspace(-4, 0, 41)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3), sharey=True)
    for ax, samples, title in ((axes[0], uniform, "uniform (sampler=random)"),
                               (axes[1], logu, "log-uniform (sampler=log_random)")):
        ax.hist(samples, bins=bins, color="#3b75af")
        ax.set_xscale("log")
        shares = np.histogram(np.log10(samples), bins=[-4, -3, -2, -1, 0])[0] / n
        ax.set_title(f"{title}\nper decade: " + " / ".join(f"{s:.0%}" for s in shares), fontsize=9)
        ax.set_xlabel("learning rate")
    axes[0].set_ylabel(f"count of {n} samples")
    fig.tight_layout()
    _save(fig, plt, path)


def best_trials_figure(histories: Mapping[str, Mapping[str, Sequence[tuple[int, float]]]], path: Path) -> None:
    """Learning curves and batch-norm running statistics over epochs of the best trials (this
    app's metric names); for any other app one panel per metric it logged (at most four).
    ``histories``: trial label -> metric name -> [(epoch, value)]."""
    plt = _pyplot()
    keys = sorted({k for h in histories.values() for k in h})
    panels = [("loss", ("train_loss", "val_loss")), ("accuracy", ("train_acc", "val_acc"))]
    if not {k for _, names in panels for k in names} & set(keys):
        panels = [(k, (k,)) for k in keys[:4]]
    bn = sorted({k.rsplit("/", 1)[0] for k in keys if k.startswith("bn/")})
    if bn:
        panels += [("running mean (avg over features)", tuple(f"{p}/running_mean_avg" for p in bn)),
                   ("running var (avg over features)", tuple(f"{p}/running_var_avg" for p in bn))]
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    for ax, (title, keys) in zip(axes[0], panels, strict=True):
        for n, (label, h) in enumerate(histories.items()):
            for k, key in enumerate(keys):
                points = h.get(key) or []
                if points:
                    style = "-" if k == len(keys) - 1 else "--"
                    ax.plot(*zip(*points, strict=True), style, color=f"C{n}", label=f"{label} {key}", lw=1.2)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    _save(fig, plt, path)


def _save(fig: Any, plt: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def space_rounds(result: Any) -> list[dict[str, Any]]:
    """``pipeline.sweep.SearchResult`` -> the ``rounds`` argument of :func:`zoom_figure`."""
    return [{"round": r.round, "space": r.space, "next_space": r.next_space,
             "trials": [{"params": t.params, "value": t.value} for t in r.trials]} for r in result.rounds]


