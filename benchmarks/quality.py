"""Search quality: the best validation loss found on digits with the same trial budget by the
sweeper's default (gp sampler one trial at a time, trust region, explore share), the policies
before it (zoom + log_random: span, trust), plain random, log_random without zoom, grid, and
Optuna's TPE when installed, on the default search space (lr left untagged, so each sampler's
default scale is what is compared), median and worst over seeds, for normalization=batch_norm
and none."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
TRUST_SHRINK = 0.6


def default_space() -> Any:
    from pipeline.search import parse

    params = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "config.yaml").hydra.sweeper.params)
    return parse(params)


def _tpe(space: Any, objective: Any, budget: int, seed: int) -> float:
    import optuna
    from optuna import distributions as D

    from pipeline.search import Choice, Interval

    dists: dict[str, Any] = {}
    for d in space.dims:  # what hydra-optuna-sweeper builds: only the `log` tag is read
        if isinstance(d, Choice):
            dists[d.key] = D.CategoricalDistribution(list(d.values))
        elif isinstance(d, Interval):
            log = d.scale == "log"
            if d.integer:
                dists[d.key] = D.IntLogUniformDistribution(int(d.low), int(d.high)) if log \
                    else D.IntUniformDistribution(int(d.low), int(d.high))
            else:
                dists[d.key] = D.LogUniformDistribution(d.low, d.high) if log else D.UniformDistribution(d.low, d.high)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed), direction="minimize")

    def trial_fn(trial: Any) -> float:
        params = {k: trial._suggest(k, dist) for k, dist in dists.items()}
        value = objective(params)
        return value if value is not None else float("nan")

    study.optimize(trial_fn, n_trials=budget, catch=(Exception,))
    values = [t.value for t in study.trials if t.value is not None and math.isfinite(t.value)]
    return min(values) if values else float("nan")


def measure(quick: bool) -> dict[str, Any]:
    from hydra import compose, initialize_config_dir

    from pipeline.sweep import Outcome, search
    from pipeline.train import run
    from pipeline.zoom import ZoomMode, ZoomPolicy
    from plugins.samplers.gp import GPSampler
    from plugins.samplers.grid import GridSampler
    from plugins.samplers.log_random import LogRandomSampler
    from plugins.samplers.random import RandomSampler

    space = default_space()
    seeds = [0] if quick else list(range(5))
    norms = ["batch_norm"] if quick else ["batch_norm", "none"]
    rounds, per_round = (2, 4) if quick else (3, 16)
    budget = rounds * per_round
    try:
        import optuna  # noqa: F401

        have_optuna = True
    except ImportError:
        have_optuna = False
    best: dict[str, dict[str, list[float]]] = {}
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        for norm in norms:
            def objective(params: dict[str, Any], norm: str = norm) -> float | None:
                cfg = compose("config", [f"normalization={norm}", "tracking.enabled=false", "quiet=true",
                                         *space.overrides(params)])
                try:
                    return run(cfg, verbose=False).objective
                except Exception:
                    return None

            def evaluate(r: int, proposals: list, s: Any, first: int = 0, objective: Any = objective) -> list[Any]:
                return [Outcome(objective(p)) for p in proposals]

            for seed in seeds:
                result = search(space, GPSampler(seed), evaluate, rounds=rounds + 1,
                                trials_per_round=budget // (rounds + 1), batch=1)
                best.setdefault("default (gp one at a time, trust x0.6, explore)", {}).setdefault(norm, []).append(
                    result.best.value if result.best else float("nan"))
                plans = {  # method: (sampler, rounds, trials per round, top_k, zoom mode)
                    "zoom+log_random": (LogRandomSampler(seed), rounds, per_round, None, "span"),
                    # the trust-region policy at the same budget: four rounds, each 0.6 x the last
                    # round's width around the best trial so far
                    f"zoom+log_random {rounds + 1}x{budget // (rounds + 1)} trust x{TRUST_SHRINK}":
                        (LogRandomSampler(seed), rounds + 1, budget // (rounds + 1), 3, "trust"),
                    "log_random": (LogRandomSampler(seed), 1, budget, None, "span"),
                    "random": (RandomSampler(seed), 1, budget, None, "span"),
                    "grid": (GridSampler(seed), 1, budget, None, "span"),
                }
                for method, (sampler, n_rounds, n_trials, top_k, mode) in plans.items():
                    result = search(space, sampler, evaluate, rounds=n_rounds, trials_per_round=n_trials,
                                    policy=ZoomPolicy(ZoomMode(mode), min(top_k, n_trials) if top_k else None,
                                                      top_fraction=0.25, margin=0.1, shrink=TRUST_SHRINK,
                                                      explore=0.0, narrow_choices=True))
                    value = result.best.value if result.best else float("nan")
                    best.setdefault(method, {}).setdefault(norm, []).append(value)
                if have_optuna:
                    tpe = _tpe(space, objective, budget, seed)
                    best.setdefault("tpe (optuna)", {}).setdefault(norm, []).append(tpe)
    median = {m: {n: statistics.median(v) for n, v in by.items()} for m, by in best.items()}
    worst = {m: {n: max(v) for n, v in by.items()} for m, by in best.items()}
    return {"search_quality": median, "search_quality_worst": worst, "search_budget": budget,
            "search_seeds": len(seeds), "search_quality_all": best,
            **({} if have_optuna else {"tpe_note": "Optuna not installed (pip install -e .[optuna])"})}
