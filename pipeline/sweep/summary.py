"""What a sweep concludes, as data: each search's ``optimization_results.yaml``, the summary over
crossed combinations, the noise floor from seed re-runs and the leaderboard rows. Pure: the
runner writes them (pipeline.sweep.files) and reports them (pipeline.sweep.report)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.search.objective import Objective
from pipeline.search.rounds import SearchResult
from pipeline.search.space import Interval
from pipeline.search.trial import Trial, latest
from pipeline.sweep.plan import Search
from pipeline.sweep.settings import SweepSettings

Reproduce = Callable[[Sequence[str]], str]  # task overrides -> a command that runs them once


@dataclass
class Outcomes:
    """A search's result and what was measured after it: the noise floor and importance."""

    search: Search
    result: SearchResult | None = None
    noise: dict[str, Any] | None = None
    importance: Any = None  # pipeline.sweep.analysis.importance.ImportanceResult

    @property
    def best(self) -> Trial | None:
        return self.result.best if self.result else None


def noise_floor(ranked: Sequence[Trial], reruns: Mapping[int, Sequence[float]], seeds: int) -> dict[str, Any]:
    """Mean and spread over seeds of each of the ``ranked`` best configurations (its own value
    plus ``reruns[k]``), and the pooled standard deviation: differences below it mean nothing."""
    configs, variances = [], []
    for k, trial in enumerate(ranked):
        values = [trial.value, *reruns.get(k, [])]
        std = statistics.stdev(values) if len(values) > 1 else None
        if std is not None:
            variances.append(std**2)
        configs.append({"params": dict(trial.params), "values": values, "mean": statistics.fmean(values),
                        "std": std})
    pooled = math.sqrt(statistics.fmean(variances)) if variances else None
    return {"std": pooled, "seeds": seeds + 1, "configs": configs}


def search_results(out: Outcomes, settings: SweepSettings, reproduce: Reproduce) -> dict[str, Any]:
    """The content of a search's ``optimization_results.yaml``."""
    search, result = out.search, out.result
    assert result is not None
    objective, best = settings.objective, result.best
    data: dict[str, Any] = {"name": "zoom", "direction": objective.direction.value}
    if objective.metric:
        data["metric"] = objective.metric
    data["sampler"] = search.sampler_name
    data["scales"] = {d.key: search.sampler.scale_of(d) for d in search.space.dims if isinstance(d, Interval)}
    data["settings"] = settings.policy.as_params(settings.schedule.sizes[-1])  # top_k: as many as it zoomed onto
    data["best_value"] = best.value if best else None
    data["best_params"] = dict(best.params) if best else None
    if best is not None:
        data["best_trial"] = {"round": best.round, "index": best.index, "job_dir": best.job_dir}
        if best.held_out:
            data["best_held_out"] = {**best.held_out, "note": "held-out test split, never used to choose"}
        if best.run_id:
            data["best_trial"]["mlflow_run_id"] = best.run_id
        data["reproduce"] = reproduce(search.reproduce(best))
    if search.combo:
        data["combination"] = list(search.combo)
    data["trials"] = len(result.trials)
    data["failed"] = result.failed
    if settings.rungs is not None:
        rungs = settings.rungs
        data["fidelity"] = {"key": settings.fidelity.key, "levels": list(rungs.levels), "eta": settings.fidelity.eta,
                            "configurations": len(latest(result.trials)), "best_at": best.fidelity if best else None,
                            "note": "best_value ranks only trials at the highest fidelity reached"}
    data["rounds"] = [{
        "round": r.round,
        **({"fidelity": r.trials[0].fidelity, "promoted": sum(t.origin is not None for t in r.trials)}
           if r.trials and r.trials[0].fidelity is not None else {}),
        "space": r.space.as_params(),
        "trials": len(r.trials),
        "failed": r.failed,
        "best_value": r.best.value if r.best else None,
        "best_params": dict(r.best.params) if r.best else None,
        **({"notes": r.notes} if r.notes else {}),
    } for r in result.rounds]
    data["next_space"] = result.rounds[-1].next_space.as_params() if result.rounds else None
    if out.noise is not None:
        data["noise_floor"] = out.noise
    return data


def ranked_searches(outs: Sequence[Outcomes], objective: Objective) -> list[Outcomes]:
    """Searches with a successful trial, by their best value, best first."""
    best = {id(o.best): o for o in outs if o.best is not None}
    return [best[id(t)] for t in objective.rank(o.best for o in outs if o.best is not None)]


def crossed_summary(outs: Sequence[Outcomes], settings: SweepSettings, reproduce: Reproduce) -> dict[str, Any]:
    """The sweep directory's ``optimization_results.yaml`` over crossed combinations."""
    objective = settings.objective
    ranked = ranked_searches(outs, objective)
    data: dict[str, Any] = {"name": "zoom", "direction": objective.direction.value}
    if objective.metric:
        data["metric"] = objective.metric
    top = ranked[0] if ranked else None
    data["best_value"] = top.best.value if top else None
    data["best_params"] = dict(top.best.params) if top else None
    if top:
        data["best_combination"] = list(top.search.combo)
        data["reproduce"] = reproduce(top.search.reproduce(top.best))
    compared = [o for o in ranked if o.noise and o.noise.get("std") is not None]
    if len(compared) > 1:
        a, b = compared[0], compared[1]
        gap = abs(a.noise["configs"][0]["mean"] - b.noise["configs"][0]["mean"])
        noise = max(a.noise["std"], b.noise["std"])
        if gap < noise:
            data["within_seed_noise"] = (
                f"[{a.search.label}] and [{b.search.label}] differ by {gap:.3g} in mean over seeds, less than "
                f"the seed noise {noise:.3g}: this sweep cannot tell them apart")
    data["combinations"] = [{
        "combination": list(o.search.combo), "directory": o.search.directory.path.name,
        "best_value": o.best.value if o.best else None,
        "best_params": dict(o.best.params) if o.best else None,
        "failed": o.result.failed if o.result else None,
        **({"mean_over_seeds": o.noise["configs"][0]["mean"], "seed_noise_std": o.noise["std"]}
           if o.noise and o.noise.get("std") is not None else {}),
    } for o in outs]
    return data


def leaderboard_trials(outs: Sequence[Outcomes]) -> list[dict[str, Any]]:
    """Every trial of every search as a leaderboard entry (pipeline.sweep.report.leaderboard)."""
    crossed = len(outs) > 1
    return [{**t.row(), "run_id": t.run_id, "combination": o.search.label if crossed else None}
            for o in outs for t in latest(o.result.trials if o.result else [])]
