"""Which hyperparameters mattered, estimated from the trials a sweep already ran.

Method (an established one, functional ANOVA on a random-forest surrogate, as in Hutter et al.'s
fANOVA and Optuna's evaluators):

1. Encode every successful trial's parameters in their own scale: log(x) for ``log``,
   log(1 - x) for ``log1m``, x for linear intervals and ranges, one-hot columns for ``choice``.
2. Fit a random forest (scikit-learn) predicting the objective from them.
3. For each parameter, its *main effect* is the surrogate's partial dependence on it (the mean
   prediction over the observed trials with that parameter set to each of its observed values);
   its importance is the variance of that main effect as a share of the variance of the
   predictions. ``1 - sum(shares)`` is what no single parameter explains: interactions and noise.
4. Repeat on bootstrap resamples of the trials; report the mean share and its spread.

Limits: with few trials the forest is rough and the spread is wide; a zoomed sweep samples the
later rounds in a narrow region, so the shares describe the region the search visited, not the
whole original space; a parameter that matters only together with another shows up in the
interaction share, not in its own.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.search.space import Choice, Interval, SearchSpace, to_unit

MIN_TRIALS = 5
MIN_TRIALS_AT_ONE_FIDELITY = 8  # a fidelity sweep's importance: the highest fidelity with this many successes
GRID = 24  # partial-dependence points per numeric parameter (quantiles of the observed values)


@dataclass
class ParamImportance:
    key: str
    share: float  # mean first-order variance share over the bootstrap fits
    spread: float  # standard deviation of the share over the fits
    effect_std: float  # standard deviation of the main effect, in objective units

    def as_dict(self) -> dict[str, float | str]:
        return {"key": self.key, "share": self.share, "spread": self.spread, "effect_std": self.effect_std}


@dataclass
class ImportanceResult:
    params: list[ParamImportance]  # most important first
    interactions: float  # 1 - sum of shares: interactions and what the surrogate cannot explain
    n_trials: int
    n_failed: int
    fits: int
    seed: int
    metric: str | None = None
    noise_std: float | None = None  # seed-to-seed standard deviation of the objective, if measured
    notes: list[str] = field(default_factory=list)
    optuna: dict[str, float] | None = None  # Optuna's impurity-based importances, when installed

    def within_noise(self, p: ParamImportance) -> bool:
        return self.noise_std is not None and p.effect_std < self.noise_std

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": "random-forest surrogate, first-order (main-effect) variance share, bootstrap spread",
            "metric": self.metric, "trials": self.n_trials, "failed_left_out": self.n_failed,
            "fits": self.fits, "seed": self.seed,
            "importance": [{**p.as_dict(), **({"within_seed_noise": True} if self.within_noise(p) else {})}
                           for p in self.params],
            "interactions_and_unexplained": self.interactions,
        }
        if self.noise_std is not None:
            out["seed_noise_std"] = self.noise_std
        if self.optuna is not None:
            out["optuna_mean_decrease_impurity"] = self.optuna
        if self.notes:
            out["notes"] = self.notes
        return out

    def table(self) -> str:
        what = f" for {self.metric}" if self.metric else ""
        lines = [f"Importance{what} (share of the objective's variance explained by each parameter alone; "
                 f"{self.n_trials} trials, {self.n_failed} failed left out, {self.fits} bootstrap fits):"]
        width = max(len(p.key) for p in self.params)
        if self.optuna is not None:
            lines.append(f"  {'':<{width}}  ours (± spread)  Optuna MDI")
        for p in self.params:
            bar = "#" * max(0, round(30 * p.share))
            flag = "  (within seed noise)" if self.within_noise(p) else ""
            theirs = f"  {self.optuna.get(p.key, float('nan')):10.2f}" if self.optuna is not None else ""
            lines.append(f"  {p.key:<{width}}  {p.share:5.2f} ± {p.spread:4.2f}{theirs}  {bar}{flag}")
        lines.append(f"  {'interactions + unexplained':<{width}}  {self.interactions:5.2f}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


def encode(space: SearchSpace, params: Sequence[Mapping[str, Any]],
           scale_of: Callable[[Interval], str]) -> tuple[np.ndarray, dict[str, list[int]]]:
    """Feature matrix (n_trials, n_columns) and, per parameter, its columns."""
    columns: list[np.ndarray] = []
    groups: dict[str, list[int]] = {}
    for dim in space.dims:
        values = [p[dim.key] for p in params]
        if isinstance(dim, Choice):
            seen = list(dict.fromkeys([*dim.values, *map(str, values)]))
            groups[dim.key] = list(range(len(columns), len(columns) + len(seen)))
            for option in seen:
                columns.append(np.array([str(v) == option for v in values], dtype=float))
        else:
            scale = scale_of(dim) if isinstance(dim, Interval) else "linear"
            groups[dim.key] = [len(columns)]
            columns.append(np.asarray(to_unit(scale, np.asarray(values, dtype=float)), dtype=float))
    return np.column_stack(columns) if columns else np.zeros((len(params), 0)), groups


def _grid(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points to set a parameter's columns to, with the weight of each (empirical frequency)."""
    if block.shape[1] == 1 and len(np.unique(block[:, 0])) > GRID:
        q = np.quantile(block[:, 0], (np.arange(GRID) + 0.5) / GRID)
        return q[:, None], np.full(GRID, 1.0 / GRID)
    points, counts = np.unique(block, axis=0, return_counts=True)
    return points, counts / counts.sum()


def _main_effects(model: Any, X: np.ndarray, groups: Mapping[str, list[int]],
                  grids: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, tuple[float, float]]:
    """Per parameter: its main effect's variance as a share of the predictions' variance, and the
    effect's standard deviation (step 3 of the module docstring), from one fitted ``model``."""
    total = float(np.var(model.predict(X)))
    # one batched prediction: every parameter set to every grid point, over all observed trials
    blocks, spans = [], {}
    for key, cols in groups.items():
        points, _ = grids[key]
        start = len(blocks)
        for point in points:
            Xg = X.copy()
            Xg[:, cols] = point
            blocks.append(Xg)
        spans[key] = (start, len(points))
    preds = model.predict(np.vstack(blocks)).reshape(-1, len(X)).mean(axis=1)
    out = {}
    for key in groups:
        start, count = spans[key]
        means = preds[start:start + count]
        weights = grids[key][1]
        centre = float(np.sum(weights * means))
        variance = float(np.sum(weights * (means - centre) ** 2))
        out[key] = (variance / total if total > 0 else 0.0, math.sqrt(variance))
    return out


def estimate(
    space: SearchSpace,
    trials: Sequence[Mapping[str, Any]],
    scale_of: Callable[[Interval], str],
    *,
    fits: int = 16,
    seed: int = 0,
    n_estimators: int = 64,
    metric: str | None = None,
    noise_std: float | None = None,
) -> ImportanceResult:
    """Importance of each dimension of ``space`` from ``trials`` (dicts with ``params``, ``value``).
    The same trials give the same numbers in any order (they are sorted first: the bootstrap
    draws rows by position), read from a sweep directory or from MLflow.

    Raises ``ValueError`` when fewer than 5 trials succeeded."""
    from sklearn.ensemble import RandomForestRegressor

    ok = [t for t in trials if t.get("value") is not None and math.isfinite(float(t["value"]))]
    ok.sort(key=lambda t: (float(t["value"]), repr(sorted((k, repr(v)) for k, v in t["params"].items()))))
    failed = len(trials) - len(ok)
    if len(ok) < MIN_TRIALS:
        raise ValueError(f"importance needs at least {MIN_TRIALS} successful trials, got {len(ok)}")
    X, groups = encode(space, [t["params"] for t in ok], scale_of)
    y = np.array([float(t["value"]) for t in ok])
    rng = np.random.default_rng(seed)
    grids = {key: _grid(X[:, cols]) for key, cols in groups.items()}
    shares = {key: [] for key in groups}
    effects = {key: [] for key in groups}
    notes = []
    if np.ptp(y) == 0:
        notes.append("every successful trial has the same objective: nothing to attribute")
    for b in range(fits):
        idx = rng.integers(0, len(y), len(y)) if fits > 1 else np.arange(len(y))
        model = RandomForestRegressor(n_estimators=n_estimators, min_samples_leaf=2, random_state=seed + b,
                                      n_jobs=1).fit(X[idx], y[idx])
        for key, (share, effect) in _main_effects(model, X, groups, grids).items():
            shares[key].append(share)
            effects[key].append(effect)
    params = sorted(
        (ParamImportance(key, float(np.mean(s)), float(np.std(s)), float(np.mean(effects[key])))
         for key, s in shares.items()),
        key=lambda p: -p.share)
    interactions = max(0.0, 1.0 - sum(p.share for p in params))
    result = ImportanceResult(params, interactions, len(ok), failed, fits, seed, metric, noise_std, notes)
    result.optuna = optuna_cross_check(space, ok, scale_of, seed)
    if result.optuna is not None and [p.key for p in params][:2] != _ranked(result.optuna)[:2]:
        result.notes.append(f"Optuna's impurity-based ranking differs at the top: {_ranked(result.optuna)[:2]} vs "
                            f"{[p.key for p in params][:2]} (impurity counts splits, ours measures main effects)")
    return result


def _ranked(importances: Mapping[str, float]) -> list[str]:
    return sorted(importances, key=lambda k: -importances[k])


def optuna_cross_check(space: SearchSpace, trials: Sequence[Mapping[str, Any]],
                       scale_of: Callable[[Interval], str], seed: int = 0) -> dict[str, float] | None:
    """Optuna's ``MeanDecreaseImpurityImportanceEvaluator`` on the same trials, when Optuna is
    installed (``None`` otherwise). Optuna knows no log1m: such parameters are uniform in x there.
    (Optuna's default fANOVA evaluator fails on current scikit-learn with the Optuna that
    hydra-optuna-sweeper pins, so the impurity-based one is used.)"""
    try:
        import optuna
        from optuna.importance import MeanDecreaseImpurityImportanceEvaluator
    except ImportError:
        return None
    from optuna import distributions as D

    dists: dict[str, Any] = {}
    for dim in space.dims:
        if isinstance(dim, Choice):
            dists[dim.key] = D.CategoricalDistribution(list(dim.values))
            continue
        log = isinstance(dim, Interval) and scale_of(dim) == "log"
        values = [float(v) for v in (dim.values if not isinstance(dim, Interval) else (dim.low, dim.high))]
        low, high = min(values), max(values)
        integer = isinstance(dim, Interval) and dim.integer
        if hasattr(D, "FloatDistribution"):  # Optuna >= 3
            dists[dim.key] = (D.IntDistribution(int(low), int(high), log=log) if integer
                              else D.FloatDistribution(low, high, log=log))
        elif integer:
            dists[dim.key] = D.IntLogUniformDistribution(int(low), int(high)) if log \
                else D.IntUniformDistribution(int(low), int(high))
        else:
            dists[dim.key] = D.LogUniformDistribution(low, high) if log else D.UniformDistribution(low, high)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():  # Optuna 2.x flags create_trial/add_trial as experimental
        warnings.simplefilter("ignore")
        return _optuna_importances(optuna, MeanDecreaseImpurityImportanceEvaluator, space, trials, dists, seed)


def _optuna_importances(optuna: Any, evaluator: Any, space: SearchSpace, trials: Sequence[Mapping[str, Any]],
                        dists: dict[str, Any], seed: int) -> dict[str, float] | None:
    study = optuna.create_study(direction="minimize")
    for t in trials:
        if t.get("value") is None or not math.isfinite(float(t["value"])):
            continue
        params = {k: (str(v) if isinstance(space.dim(k), Choice) else v) for k, v in t["params"].items()}
        params = {k: v for k, v in params.items() if dists[k]._contains(dists[k].to_internal_repr(v))}
        if len(params) == len(dists):
            study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=float(t["value"])))
    if len(study.trials) < MIN_TRIALS:
        return None
    return dict(optuna.importance.get_param_importances(study, evaluator=evaluator(seed=seed)))


def bar_chart(result: ImportanceResult, path: Path) -> None:
    """A horizontal bar chart of the shares with their spread as error bars (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = list(reversed(result.params))
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(params) + 1.4))
    colors = ["#bbbbbb" if result.within_noise(p) else "#3b75af" for p in params]
    ax.barh([p.key for p in params], [p.share for p in params], xerr=[p.spread for p in params],
            color=colors, capsize=3)
    ax.set_xlabel("share of the objective's variance explained alone (first order)")
    what = f" for {result.metric}" if result.metric else ""
    ax.set_title(f"Hyperparameter importance{what} ({result.n_trials} trials)")
    ax.set_xlim(0, max(1.0, max((p.share + p.spread for p in params), default=0)))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def from_directory(directory: Path, *, fits: int = 16, seed: int = 0) -> ImportanceResult:
    """Importance over a finished (or interrupted) sweep directory (or one ``combo_<i>/``)."""
    import yaml

    from pipeline.search.space import parse
    from pipeline.sweep.files import RESULTS_FILE, TRIALS_FILE

    directory = Path(directory)
    results = yaml.safe_load((directory / RESULTS_FILE).read_text())
    trials = _one_fidelity(yaml.safe_load((directory / TRIALS_FILE).read_text()) or [])
    space = parse(results["rounds"][0]["space"])
    scales = results.get("scales", {})
    noise = (results.get("noise_floor") or {}).get("std")
    return estimate(space, trials, lambda d: scales.get(d.key) or d.scale or "linear", fits=fits, seed=seed,
                    metric=results.get("metric"), noise_std=noise)


@dataclass
class _Row:
    """A trial row (``params``, ``value``, ``fidelity``) as :func:`pipeline.search.objective.one_fidelity` reads it."""

    row: Mapping[str, Any]

    @property
    def value(self) -> Any:
        return self.row.get("value")

    @property
    def fidelity(self) -> Any:
        return self.row.get("fidelity")


def _one_fidelity(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """In a fidelity sweep the trials of one fidelity, chosen as the sweep's own analysis does
    (values at different fidelities are not comparable); else every row."""
    from pipeline.search.objective import one_fidelity

    return [r.row for r in one_fidelity([_Row(r) for r in rows], enough=MIN_TRIALS_AT_ONE_FIDELITY)]


def from_mlflow(run_id: str, tracking_uri: str, *, fits: int = 16, seed: int = 0) -> ImportanceResult:
    """Importance over the trials nested under an MLflow sweep (or combination) run, read back
    by the run tree's one reader (pipeline.sweep.lineage.read_search)."""
    from pipeline.search.space import parse
    from pipeline.sweep.lineage import read_search

    logged = read_search(run_id, tracking_uri)
    if not logged.metric:
        raise ValueError(f"run {run_id} does not name its objective metric (sweeper.metric)")
    space = parse(logged.space)
    missing = {d.key for d in space.dims if any(d.key not in row["params"] for row in logged.trials)}
    kept = [d for d in space.dims if d.key not in missing]
    trials = _one_fidelity([{**row, "params": {d.key: _choice_value(d, row["params"][d.key]) if isinstance(d, Choice)
                                               else float(row["params"][d.key]) for d in kept}}
                            for row in logged.trials])
    result = estimate(space.with_dims(kept), trials, lambda d: logged.scales.get(d.key) or d.scale or "linear",
                      fits=fits, seed=seed, metric=logged.metric)
    if missing:
        result.notes.append(f"left out (not logged as params of the trials): {sorted(missing)}")
    return result


def _choice_value(dim: Choice, raw: str) -> Any:
    """The declared value of ``dim`` that MLflow logged as the string ``raw``."""
    return next((v for v in dim.values if str(v) == raw), raw)


def main(argv: Sequence[str] | None = None) -> int:
    """python -m pipeline.importance SWEEP_DIR, or --run-id ID [--tracking-uri URI]: which
    hyperparameters mattered in a finished (or interrupted) sweep, from its directory or its
    MLflow run (the same trials give the same numbers either way)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pipeline.importance", description=main.__doc__)
    parser.add_argument("directory", nargs="?", type=Path, help="a sweep directory (or a combo_<i>/ folder)")
    parser.add_argument("--run-id", help="an MLflow sweep (parent) or combination run instead of a directory")
    parser.add_argument("--tracking-uri", default=None, help="default: sqlite:///outputs/mlflow.db")
    parser.add_argument("--fits", type=int, default=16, help="bootstrap fits (spread)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, default=None, help="also write the bar chart to this PNG")
    args = parser.parse_args(argv)
    if (args.directory is None) == (args.run_id is None):
        parser.error("give a sweep directory or --run-id")
    try:
        if args.run_id:
            from pipeline.tracking.store import resolve_uri

            result = from_mlflow(args.run_id, resolve_uri(args.tracking_uri), fits=args.fits, seed=args.seed)
        else:
            result = from_directory(args.directory, fits=args.fits, seed=args.seed)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    print(result.table())
    if args.plot:
        bar_chart(result, args.plot)
        print(f"chart: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
