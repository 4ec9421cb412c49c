"""Search quality (benchmarks/problems.py): the best regret each method finds on seven test
functions, and the best validation loss on three trained problems (digits with batch norm and
without, the spirals with batch norm; this app's default space), at 20, 50 and 100 trials, median
and worst over seeds. Tuning seeds 0-19 choose policies; the held-out seeds 100-119 run only for
the final table and are reported apart.

A trained trial costs 0.2-0.8 s, ~3000x a test function, so the trained problems run fewer seeds
(the first ``TRAINED_SEEDS`` of the set) and the methods a user chooses between
(``TRAINED_METHODS``): all of them on 20 seeds would take ~8 hours on 2 cores against the issue's
90 minutes. Jobs (problem, method, seed) run in a pool of one process per core; each job is
deterministic, so the numbers do not depend on the pool.

Methods run through the project's own round loop (pipeline.sweep.search) with the sweeper's
policies, plus Optuna's TPE as hydra-optuna-sweeper runs it (its own mapping of the space, asked
and told in batches of its default ``n_jobs`` = 2), when Optuna is installed. Methods that do not
depend on the budget (one round of random draws, one trial at a time) run once at the largest
budget and are read at the smaller ones, best-so-far.

Current Optuna (5.x: TPE, multivariate TPE, CMA-ES, GPSampler where torch is there) runs in an
environment the benchmark makes under ``outputs/bench/optuna5`` (benchmarks/optuna5.py), one trial
at a time. A trained trial that diverges is a failed trial for every method (``inf``; the sweeper
ranks it last, Optuna is told FAIL, as hydra-optuna-sweeper does on an exception).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.problems import PROBLEMS, TRAINED, Problem
from pipeline.search.rounds import Batch, Outcome, search
from pipeline.search.schedule import Schedule
from pipeline.search.zoom import ZoomMode, ZoomPolicy

BUDGETS = (20, 50, 100)
TUNING_SEEDS = tuple(range(20))
HELD_OUT_SEEDS = tuple(range(100, 120))
TRAINED_SEEDS = 5
# label prefixes: the default, the default before it, random, and the TPE and CMA-ES a user has
TRAINED_METHODS = ("default (", "trust x0.6, log_random", "random", "Optuna TPE (hydra-optuna-sweeper",
                   "Optuna 5 TPE (", "Optuna 5 CMA-ES")


def outcome(value: float) -> Outcome:
    """A problem's value as a trial's outcome: ``inf`` (a diverged training) is a failed trial."""
    return Outcome(value if math.isfinite(value) else None, None if math.isfinite(value) else "diverged")


def _sweep(problem: Problem, sampler: Any, schedule: Schedule, policy: ZoomPolicy, batch: int | None) -> list[float]:
    """The values of every trial, in the order they ran."""
    values: list[float] = []

    def evaluate(batch: Batch) -> list[Outcome]:
        out = [problem.f(p) for p in batch.proposals]
        values.extend(out)
        return [outcome(v) for v in out]

    search(problem.space, sampler, evaluate, schedule=schedule, policy=policy, batch=batch)
    return values


def _log_random(seed: int) -> Any:
    from plugins.samplers.log_random import LogRandomSampler

    return LogRandomSampler(seed=seed)


def _gp(seed: int) -> Any:
    from plugins.samplers.gp import GPSampler

    return GPSampler(seed=seed)


def zoom_method(policy: ZoomPolicy, rounds: Callable[[int], int | None] = lambda n: None,
                sampler: Callable[[int], Any] = _log_random,
                batch: int | None = 1) -> Callable[[Problem, int, int], list[float]]:
    """The round loop as the sweeper runs it; ``batch`` 1 is Hydra's basic launcher (an adaptive
    sampler proposes one trial at a time), 2 joblib with two workers."""
    def run(problem: Problem, n: int, seed: int) -> list[float]:
        return _sweep(problem, sampler(seed), Schedule.plan(n, rounds(n)), policy, batch)
    return run


def one_round(sampler: Callable[[int], Any]) -> Callable[[Problem, int, int], list[float]]:
    def run(problem: Problem, n: int, seed: int) -> list[float]:
        return _sweep(problem, sampler(seed), Schedule((n,)), ZoomPolicy(), None)
    return run


def one_at_a_time(sampler: Callable[[int], Any]) -> Callable[[Problem, int, int], list[float]]:
    """Rounds of one trial and no zoom (the whole space every round, every choice value kept)."""
    def run(problem: Problem, n: int, seed: int) -> list[float]:
        values: list[float] = []
        s, trials = sampler(seed), []
        from pipeline.search.objective import History, Objective
        from pipeline.search.trial import Trial

        for r in range(n):
            (params,) = s.sample(problem.space, 1, stream=(0, r + 1), history=History(trials, Objective()))
            value = problem.f(params)
            trials.append(Trial(r + 1, 0, params, value if math.isfinite(value) else None))
            values.append(value)
        return values
    return run


def hydra_optuna_tpe(problem: Problem, n: int, seed: int, n_jobs: int = 2) -> list[float]:
    """TPE as hydra-optuna-sweeper 1.2 runs it: its own distributions for the space, seeded TPE,
    ``n_jobs`` trials asked then told per batch."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = optuna_distributions(problem)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed), direction="minimize")
    values: list[float] = []
    while len(values) < n:
        trials = [study.ask(distributions) for _ in range(min(n_jobs, n - len(values)))]
        for trial in trials:
            value = problem.f({k: _typed(problem, k, v) for k, v in trial.params.items()})
            if math.isfinite(value):
                study.tell(trial, value)
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            values.append(value)
    return values


def optuna_distributions(problem: Problem) -> dict[str, Any]:
    """The space as hydra-optuna-sweeper maps it (its own function, on each dimension's override)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra_plugins.hydra_optuna_sweeper._impl import create_optuna_distribution_from_override

    parser = OverridesParser.create()
    return {d.key: create_optuna_distribution_from_override(parser.parse_override(f"{d.key}={d.expression()}"))
            for d in problem.space.dims}


def _typed(problem: Problem, key: str, value: Any) -> Any:
    from pipeline.search.space import Choice

    return str(value) if isinstance(problem.space.dim(key), Choice) else value


def methods() -> dict[str, tuple[Callable[[Problem, int, int], list[float]], bool]]:
    """name -> (run(problem, n, seed) -> values in order, budget-independent)."""
    from plugins.samplers.parzen import ParzenSampler
    from plugins.samplers.random import RandomSampler

    old = {"explore": 0.0, "narrow_choices": True}  # the policies before the explore share
    out: dict[str, tuple[Callable[[Problem, int, int], list[float]], bool]] = {
        "default (the sweeper's defaults: gp sampler one trial at a time, trust x0.6, explore 1/8)": (
            zoom_method(ZoomPolicy(), sampler=_gp), False),
        "default with 2 parallel workers (gp batches of 2)": (zoom_method(ZoomPolicy(), sampler=_gp, batch=2), False),
        "gp, whole rounds at once (no batches)": (zoom_method(ZoomPolicy(), sampler=_gp, batch=None), False),
        "trust x0.6, log_random (the default before)": (zoom_method(ZoomPolicy(**old)), False),
        "span, n_trials rule": (zoom_method(ZoomPolicy(ZoomMode.SPAN, shrink=0.5, **old)), False),
        "span, 3 rounds (the default before n_trials)": (
            zoom_method(ZoomPolicy(ZoomMode.SPAN, shrink=0.5, **old), rounds=lambda n: 3), False),
        "random": (one_round(lambda s: RandomSampler(seed=s)), True),
        "log_random": (one_round(_log_random), True),
        "parzen, one trial at a time": (one_at_a_time(lambda s: ParzenSampler(seed=s)), True),
    }
    try:
        import optuna  # noqa: F401

        from plugins.samplers.optuna_adapter import OptunaSampler

        out["zoom + optuna TPE rounds (adapter)"] = (
            zoom_method(ZoomPolicy(), sampler=lambda s: OptunaSampler(seed=s)), False)
        out["Optuna TPE (hydra-optuna-sweeper, n_jobs=2)"] = (hydra_optuna_tpe, True)
    except ImportError:
        pass
    return out


def optuna5_methods(gp: bool = False) -> tuple[dict[str, tuple[Callable[[Problem, int, int], list[float]], bool]],
                                                list[str]]:
    """Current Optuna's samplers, each driving one child process in its own environment; and the
    labels of those that cannot run here (GPSampler only with ``gp``: ~40 s per 100-trial study)."""
    from benchmarks import optuna5

    runnable, not_run = {}, []
    for label, name in optuna5.methods(gp):
        if name is None:
            not_run.append(label)
            continue
        runnable[label] = (_study_in_child(name), True)
    return runnable, not_run


def _study_in_child(name: str) -> Callable[[Problem, int, int], list[float]]:
    from benchmarks import optuna5

    child: list[optuna5.Child] = []

    def run(problem: Problem, n: int, seed: int) -> list[float]:
        if not child:
            exe = optuna5.python()
            assert exe is not None
            child.append(optuna5.Child(exe))
        return child[0].study(problem, name, seed, n)
    return run


_WORKER: dict[str, Any] = {}


def _job(problem: str, method: str, seed: int, budgets: tuple[int, ...], optuna_gp: bool) -> dict[int, float]:
    """One method on one problem and seed, in a pool worker: the best value at each budget."""
    known = _WORKER.setdefault("methods", {})
    if method not in known:  # Optuna 5's methods only when asked for: they make its environment
        known.update(methods())
        if method not in known:
            known.update(optuna5_methods(optuna_gp)[0])
    run, independent = known[method]
    p = PROBLEMS.get(problem) or TRAINED[problem]
    if independent:
        values = run(p, max(budgets), seed)
        return {n: min(values[:n]) for n in budgets}
    return {n: min(run(p, n, seed)) for n in budgets}


def measure(quick: bool, seeds: Sequence[int] = TUNING_SEEDS, optuna_gp: bool = False,
            workers: int | None = None) -> dict[str, Any]:
    problems = dict(list(PROBLEMS.items())[:2]) if quick else {**TRAINED, **PROBLEMS}
    seeds = seeds[:2] if quick else seeds
    budgets = (10, 20) if quick else BUDGETS
    every, not_run = dict(methods()), []
    if not quick:
        current, not_run = optuna5_methods(optuna_gp)
        every.update(current)
    jobs = []  # the trained problems first: the longest jobs, so the pool ends together
    for name, problem in problems.items():
        for method in every:
            if quick and "Optuna" in method:
                continue
            if problem.trained and not method.startswith(TRAINED_METHODS):
                continue
            for seed in (seeds[:TRAINED_SEEDS] if problem.trained else seeds):
                jobs.append((name, method, seed))
    best: dict[str, dict[str, dict[int, list[float]]]] = {}
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers or os.cpu_count() or 1, maxtasksperchild=None) as pool:
        results = pool.starmap(_job, [(*job, tuple(budgets), optuna_gp) for job in jobs], chunksize=1)
    for (name, method, _), by_budget in zip(jobs, results, strict=True):
        cell = best.setdefault(name, {}).setdefault(method, {n: [] for n in budgets})
        for n in budgets:
            cell[n].append(by_budget[n])
    summary = {name: {method: {str(n): {"median": statistics.median(v), "worst": max(v), "seeds": v}
                               for n, v in by.items()}
                      for method, by in methods_.items()} for name, methods_ in best.items()}
    return {"search": summary, "search_seeds": list(seeds), "search_trained_seeds": list(seeds[:TRAINED_SEEDS]),
            "search_budgets": list(budgets), "search_not_run": not_run}


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, draws: int = 2000,
                     seed: int = 0) -> tuple[float, float]:
    """90% interval of the median of the paired differences ``a - b`` (seed by seed), by resampling
    seeds."""
    import numpy as np

    diff = np.asarray(a) - np.asarray(b)
    rng = np.random.default_rng(seed)
    medians = np.median(diff[rng.integers(0, len(diff), (draws, len(diff)))], axis=1)
    return float(np.quantile(medians, 0.05)), float(np.quantile(medians, 0.95))


def verdicts(summary: dict[str, Any], budgets: Sequence[int], method: str) -> list[dict[str, Any]]:
    """Per problem and budget: ``method`` against the best TPE variant (by median: the target is
    median and worst seed <= that variant's) and win / tie / loss against CMA-ES and GPSampler
    when they ran (tie: the paired bootstrap 90% interval of the difference contains 0)."""
    rows = []
    for name, by in summary.items():
        tpes = [m for m in by if "TPE" in m and "adapter" not in m]
        rivals = {key: next((m for m in by if name in m), None) for key, name in (("vs_cmaes", "CMA-ES"),
                                                                                  ("vs_gp", "GPSampler"))}
        for n in budgets:
            cell = by[method][str(n)]
            row: dict[str, Any] = {"problem": name, "trials": n, "median": cell["median"], "worst": cell["worst"]}
            if tpes:
                tpe = min(tpes, key=lambda m: by[m][str(n)]["median"])
                row.update(tpe=tpe, tpe_median=by[tpe][str(n)]["median"], tpe_worst=by[tpe][str(n)]["worst"])
                row["target"] = cell["median"] <= row["tpe_median"] and cell["worst"] <= row["tpe_worst"]
            for key, rival in rivals.items():
                if rival:
                    lo, hi = paired_bootstrap(cell["seeds"], by[rival][str(n)]["seeds"])
                    row[key] = "tie" if lo <= 0 <= hi else ("win" if hi < 0 else "loss")
            rows.append(row)
    return rows


def table(summary: dict[str, Any], budgets: Sequence[int]) -> str:
    lines = []
    for name, by_method in summary.items():
        what = "best val_loss" if name in TRAINED else "best regret"
        lines.append(f"\n{name}: {what}, median (worst)\n")
        lines.append("| method | " + " | ".join(f"{n} trials" for n in budgets) + " |")
        lines.append("| --- |" + " --- |" * len(budgets))
        for method, cells in by_method.items():
            lines.append(f"| {method} | " + " | ".join(
                f"{cells[str(n)]['median']:.3g} ({cells[str(n)]['worst']:.3g})" for n in budgets) + " |")
    return "\n".join(lines)


def default_verdicts(result: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The default method's name and its verdict on every problem and budget."""
    default = next(m for m in result["search"]["branin"] if m.startswith("default"))
    return default, verdicts(result["search"], result["search_budgets"], default)


def report(result: dict[str, Any]) -> str:
    """The tables of every problem, what did not run, and the default's verdicts."""
    lines = [f"seeds {result['search_seeds'][0]}-{result['search_seeds'][-1]} (trained problems: "
             f"{result['search_trained_seeds'][0]}-{result['search_trained_seeds'][-1]})",
             table(result["search"], result["search_budgets"])]
    lines += [f"not run: {label}" for label in result["search_not_run"]]
    default, rows = default_verdicts(result)
    lines += [f"\n{default} against the best TPE variant and CMA-ES:\n",
              "| problem | trials | default | best TPE variant | target | vs CMA-ES | vs GPSampler |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['problem']} | {r['trials']} | {r['median']:.3g} ({r['worst']:.3g}) | "
                     f"{r.get('tpe', '-')}: {r.get('tpe_median', math.nan):.3g} ({r.get('tpe_worst', math.nan):.3g}) | "
                     f"{'met' if r.get('target') else 'not met'} | {r.get('vs_cmaes', '-')} | {r.get('vs_gp', '-')} |")
    met = sum(bool(r.get("target")) for r in rows)
    lines.append(f"\ntarget met in {met} of {len(rows)} rows; " + "; ".join(
        f"{label}: " + ", ".join(f"{k} {sum(r.get(key) == k for r in rows)}" for k in ("win", "tie", "loss"))
        for key, label in (("vs_cmaes", "vs CMA-ES"), ("vs_gp", "vs GPSampler")) if any(key in r for r in rows)))
    return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
    import json
    from pathlib import Path

    held_out = "--held-out" in argv
    result = measure("--quick" in argv, HELD_OUT_SEEDS if held_out else TUNING_SEEDS, "--optuna-gp" in argv)
    out = Path("outputs") / "bench" / f"search_{'held_out' if held_out else 'tuning'}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result))
    print(f"every seed's value in {out}" + (" (held-out seeds)" if held_out else ""))
    print(report(result))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
