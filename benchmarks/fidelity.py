"""Fidelity benchmark (``python -m benchmarks --only fidelity``; ``python -m benchmarks.fidelity
[--held-out]``): the best validation loss at the full 20 epochs found for a number of epochs
trained in all, on the three trained problems (benchmarks/problems.py: digits with batch norm
and without, the spirals with batch norm; this app's default space).

Methods, each on the same seeds:

* reference: the sweeper's default policy at full fidelity, ``n_trials=48`` x 20 epochs = 960;
* the fidelity schedule (pipeline.search.fidelity) with one set of settings for all problems, fixed
  before any run (``FIDELITY``: 2 to 20 epochs, eta 3, promoted trials continued from their
  checkpoint), at a budget of 960 epochs and of 320;
* Optuna's TPE with ``HyperbandPruner(min_resource=2, max_resource=20, reduction_factor=3)`` on
  Optuna 2.10 (this environment) and on Optuna 5 (the environment of benchmarks/optuna5.py),
  every epoch reported through ``pipeline.train.run``'s ``on_epoch``; trials start until their
  summed epochs reach 960 (the last one may run past it: the epochs column says how far).

A method's result is the best value among its trials trained the full 20 epochs. Epochs are
counted as trained (a continued trial counts only its new epochs); wall time is per study, in one
process of a pool of one per core (the jobs are deterministic, so the pool does not change them).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.problems import TRAINED, Problem, train
from benchmarks.search import outcome
from pipeline.errors import TrialPruned
from pipeline.search.fidelity import Fidelity, plan
from pipeline.search.rounds import Batch, Outcome, search
from pipeline.search.schedule import Schedule
from pipeline.search.trial import trial_name

FIDELITY = Fidelity("trainer.epochs", 2, 20, 3, "trainer.resume_from")
MAX_EPOCHS, BUDGET, CHEAP = 20, 960, 320
PRUNER = {"min_resource": 2, "max_resource": MAX_EPOCHS, "reduction_factor": 3}
TUNING_SEEDS, HELD_OUT_SEEDS = tuple(range(5)), tuple(range(100, 105))  # ~20 min per set on 2 cores


class Counter:
    """Epochs trained by one study."""

    def __init__(self) -> None:
        self.epochs = 0

    def __call__(self, epoch: int, metrics: dict[str, float]) -> None:
        self.epochs += 1


def reference(problem: Problem, seed: int, work: Path) -> tuple[float, int]:
    from plugins.samplers.gp import GPSampler

    count = Counter()

    def evaluate(batch: Batch) -> list[Outcome]:
        return [outcome(train(problem, p, f"trainer.epochs={MAX_EPOCHS}", on_epoch=count)) for p in batch.proposals]

    result = search(problem.space, GPSampler(seed), evaluate, schedule=Schedule.plan(BUDGET // MAX_EPOCHS), batch=1)
    return (result.best.value if result.best else math.inf), count.epochs


def rungs(budget: int) -> Callable[[Problem, int, Path], tuple[float, int]]:
    def run(problem: Problem, seed: int, work: Path) -> tuple[float, int]:
        from plugins.samplers.gp import GPSampler

        count = Counter()

        def evaluate(batch: Batch) -> list[Outcome]:
            out = []
            for i, p in enumerate(batch.proposals, start=batch.first):
                origin = batch.continues[i - batch.first] if batch.continues else None
                home = work / trial_name(*(origin.first if origin else (batch.round, i)))
                out.append(outcome(train(problem, p, f"trainer.epochs={batch.fidelity}",
                                         f"trainer.resume_from={home}", on_epoch=count)))
            return out

        schedule = plan(FIDELITY, None, budget).schedule()
        result = search(problem.space, GPSampler(seed), evaluate, schedule=schedule, batch=1)
        best = result.best
        return (best.value if best is not None and best.fidelity == MAX_EPOCHS else math.inf), count.epochs
    return run


def _pruned_trial(problem: Problem, params: dict, report: Callable[[float, int], bool]) -> tuple[str, float]:
    """Train ``params`` 20 epochs, stopping when ``report(val_loss, epoch)`` says prune."""
    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        if report(metrics["val_loss"], epoch):
            raise TrialPruned(epoch)

    try:
        value = train(problem, params, f"trainer.epochs={MAX_EPOCHS}", on_epoch=on_epoch)
    except TrialPruned:
        return "pruned", math.nan
    return ("complete", value) if math.isfinite(value) else ("failed", value)


def tpe_hyperband_210(problem: Problem, seed: int, work: Path) -> tuple[float, int]:
    """Optuna 2.10 (what hydra-optuna-sweeper runs) with the Hyperband pruner, one trial at a time."""
    import optuna

    from benchmarks.search import optuna_distributions

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.HyperbandPruner(**PRUNER))
    distributions = optuna_distributions(problem)
    epochs, best = 0, math.inf
    while epochs < BUDGET:
        trial = study.ask(distributions)
        seen = [0]

        def report(value: float, epoch: int, trial: Any = trial, seen: list[int] = seen) -> bool:
            seen[0] = epoch
            trial.report(value, epoch)
            return trial.should_prune()

        state, value = _pruned_trial(problem, dict(trial.params), report)
        epochs += seen[0]
        if state == "complete":
            study.tell(trial, value)
            best = min(best, value)
        else:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED if state == "pruned" else
                       optuna.trial.TrialState.FAIL)
    return best, epochs


def tpe_hyperband_5(problem: Problem, seed: int, work: Path) -> tuple[float, int]:
    """Optuna 5 with the Hyperband pruner, driven over the pipe of benchmarks/optuna5.py."""
    from benchmarks import optuna5

    child = _WORKER.get("optuna5")
    if child is None:
        exe = optuna5.python()
        if exe is None:
            raise RuntimeError("no Optuna 5 environment")
        child = _WORKER["optuna5"] = optuna5.Child(exe)
    child._send({"space": optuna5._space(problem), "sampler": "tpe", "seed": seed, "pruner": PRUNER,
                 "n_trials": None})
    epochs, best = 0, math.inf
    while True:
        message = child._read()
        assert "params" in message, message
        if epochs >= BUDGET:
            child._send({"stop": True})
            assert child._read() == {"done": True}
            return best, epochs
        seen = [0]

        def report(value: float, epoch: int, seen: list[int] = seen) -> bool:
            seen[0] = epoch
            child._send({"report": value, "step": epoch})
            return bool(child._read()["prune"])

        state, value = _pruned_trial(problem, message["params"], report)
        epochs += seen[0]
        if state == "complete":
            best = min(best, value)
        child._send({"pruned": True} if state == "pruned" else {"value": value if state == "complete" else None})


METHODS: dict[str, Callable[[Problem, int, Path], tuple[float, int]]] = {
    f"reference: default policy, {BUDGET // MAX_EPOCHS} trials x {MAX_EPOCHS} epochs": reference,
    f"fidelity schedule, budget {BUDGET}": rungs(BUDGET),
    f"fidelity schedule, budget {CHEAP}": rungs(CHEAP),
    "Optuna 2.10 TPE + HyperbandPruner(2, 20, 3)": tpe_hyperband_210,
    "Optuna 5 TPE + HyperbandPruner(2, 20, 3)": tpe_hyperband_5,
}
_WORKER: dict[str, Any] = {}


def _job(problem: str, method: str, seed: int) -> tuple[float, int, float]:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        best, epochs = METHODS[method](TRAINED[problem], seed, Path(work))
    return best, epochs, time.perf_counter() - start


def measure(quick: bool, seeds: Sequence[int] = TUNING_SEEDS, workers: int | None = None) -> dict[str, Any]:
    if quick:  # a smoke run: one problem, one seed, the cheap schedule
        jobs = [("spirals_batch_norm", f"fidelity schedule, budget {CHEAP}", 0)]
        seeds = (0,)
    else:
        jobs = [(p, m, s) for p in TRAINED for m in METHODS for s in seeds]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers or os.cpu_count() or 1) as pool:
        results = pool.starmap(_job, jobs, chunksize=1)
    cells: dict[str, dict[str, dict[str, list[float]]]] = {}
    for (problem, method, _), (best, epochs, seconds) in zip(jobs, results, strict=True):
        cell = cells.setdefault(problem, {}).setdefault(method, {"best": [], "epochs": [], "seconds": []})
        cell["best"].append(best)
        cell["epochs"].append(epochs)
        cell["seconds"].append(seconds)
    summary = {p: {m: {"median": statistics.median(c["best"]), "worst": max(c["best"]),
                       "epochs": statistics.median(c["epochs"]), "seconds": statistics.median(c["seconds"]),
                       "per_seed": c} for m, c in by.items()} for p, by in cells.items()}
    return {"fidelity": summary, "fidelity_seeds": list(seeds), **({} if quick else {"fidelity_idle": barrier_idle()})}


def barrier_idle(budget: int = CHEAP) -> dict[str, Any]:
    """A real fidelity sweep on joblib with two workers (digits, batch norm, MLflow off): per rung,
    the worker time not spent in trials (2 x the rung's span minus the trials' own seconds, from
    each job's ``result.json``): waits at the end of each batch and of the rung, dispatch, and the
    sampler's proposals between batches."""
    import json
    import subprocess
    import sys

    from benchmarks.problems import ROOT

    with tempfile.TemporaryDirectory() as tmp:
        sweep = Path(tmp) / "sweep"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pipeline", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                        f"hydra.sweep.dir={sweep}", "tracking.enabled=false", "hydra.sweeper.n_trials=null",
                        f"hydra.sweeper.budget={budget}", "hydra.sweeper.fidelity.key=trainer.epochs",
                        "hydra.sweeper.importance=false", "hydra.sweeper.plots=false", "hydra.sweeper.quiet=true"],
                       cwd=ROOT, check=True, capture_output=True)
        wall = time.perf_counter() - start
        rungs = []
        import yaml

        trials = yaml.safe_load((sweep / "trials.yaml").read_text())
        for r in sorted({t["round"] for t in trials}):
            jobs = [json.loads((Path(t["job_dir"]) / "result.json").read_text()) for t in trials if t["round"] == r]
            span = max(j["started"] + j["seconds"] for j in jobs) - min(j["started"] for j in jobs)
            busy = sum(j["seconds"] for j in jobs)
            rungs.append({"rung": r, "trials": len(jobs), "span_s": span, "busy_s": busy, "idle_s": 2 * span - busy})
    idle, total = sum(x["idle_s"] for x in rungs), sum(2 * x["span_s"] for x in rungs)
    return {"rungs": rungs, "idle_share": idle / total, "wall_s": wall}


def report(result: dict[str, Any]) -> str:
    seeds = result["fidelity_seeds"]
    lines = [f"Fidelity: best val_loss at {MAX_EPOCHS} epochs, median (worst) over seeds {seeds[0]}-{seeds[-1]}; "
             "median epochs trained and seconds per study\n",
             "| problem | method | best val_loss | epochs | seconds |", "| --- | --- | --- | --- | --- |"]
    verdicts = []
    for problem, by in result["fidelity"].items():
        for method, c in by.items():
            lines.append(f"| {problem} | {method} | {c['median']:.4f} ({c['worst']:.4f}) | {c['epochs']:.0f} | "
                         f"{c['seconds']:.1f} |")
        ref = next((c for m, c in by.items() if m.startswith("reference")), None)
        full = by.get(f"fidelity schedule, budget {BUDGET}")
        cheap = by.get(f"fidelity schedule, budget {CHEAP}")
        tpes = [c for m, c in by.items() if "Hyperband" in m]
        if full and tpes:
            rival = min(c["median"] for c in tpes)
            verdicts.append(f"{problem}: (a) at {BUDGET} epochs {full['median']:.4f} vs the better TPE + Hyperband "
                            f"{rival:.4f}: {'met' if full['median'] <= rival else 'not met'}")
        if cheap and ref:
            verdicts.append(f"{problem}: (b) at {CHEAP} epochs {cheap['median']:.4f} vs the reference at {BUDGET} "
                            f"{ref['median']:.4f}: {'met' if cheap['median'] <= ref['median'] else 'not met'}")
    idle = result.get("fidelity_idle")
    if idle:
        verdicts.append(f"\nworker time idle within rungs (joblib, n_jobs=2, digits/batch_norm, budget {CHEAP}: "
                        "each batch of two waits for its slower trial, then the next proposals are made and "
                        f"dispatched): {idle['idle_share']:.1%}; per rung " + ", ".join(
                            f"{x['idle_s']:.1f} s of {2 * x['span_s']:.1f}" for x in idle["rungs"])
                        + f"; sweep wall {idle['wall_s']:.0f} s")
    return "\n".join(lines + [""] + verdicts)


if __name__ == "__main__":
    import json
    import sys

    held_out = "--held-out" in sys.argv
    out = measure("--quick" in sys.argv, HELD_OUT_SEEDS if held_out else TUNING_SEEDS)
    path = Path("outputs") / "bench" / f"fidelity_{'held_out' if held_out else 'tuning'}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out))
    print(report(out))
    print(f"\nevery seed's value in {path}")
