"""The noise floor: the ``final_top`` best configurations of a search run again with
``final_seeds`` other seeds; their seed-to-seed spread is the difference below which a ranking
means nothing."""

from __future__ import annotations

import logging

from pipeline.search.objective import one_fidelity
from pipeline.search.trial import Outcome, Trial
from pipeline.sweep.files import finished_outcome
from pipeline.sweep.jobs import Job
from pipeline.sweep.launching import TimeUp
from pipeline.sweep.lineage import ROUND, SEED_RERUN, LoggedTrial
from pipeline.sweep.summary import noise_floor
from pipeline.sweep.trials import TrialJobs

log = logging.getLogger("pipeline.sweep")


def rerun_name(k: int, seed: int) -> str:
    """The run name of the ``k``-th best configuration's re-run with seed offset ``seed``."""
    return f"final-t{k}-s{seed}"


def seed_reruns(jobs: TrialJobs) -> None:
    """Re-run the search's best configurations (of one fidelity, trained in one go at the top one)
    and set ``jobs.out.noise``; re-runs that finished before an interruption are read back."""
    s, out = jobs.settings, jobs.out
    p = out.search
    assert out.result is not None and p.base_seed is not None
    ranked = s.objective.top(one_fidelity(out.result.trials), s.final_top)  # values of one fidelity
    tags = {ROUND: SEED_RERUN}
    slots = [(k, seed) for k in range(len(ranked)) for seed in range(1, s.final_seeds + 1)]
    numbers = {slot: jobs.numbers.seed_rerun(p.index, *slot) for slot in slots}
    outcomes: dict[tuple[int, int], Outcome] = {}
    todo: list[tuple[tuple[int, int], Job]] = []
    top = jobs.schedule.fidelities[-1] if s.fidelity.on else None  # in its own directory, checkpoint included
    for k, seed in slots:
        done = finished_outcome(jobs.recipe.directory(p, numbers[k, seed], final=True))
        if done is not None:
            outcomes[k, seed] = done
            continue
        todo.append(((k, seed), jobs.recipe.job(p, numbers[k, seed], rerun_name(k, seed), tags, ranked[k].params,
                                                extra=[f"{s.seed_key}={p.base_seed + seed}"], fidelity=top,
                                                final=True)))
    log.info(f"[{p.label}] noise floor: {len(ranked)} best configurations x {s.final_seeds} more seeds")
    try:
        launched = jobs.launching.launch([j for _, j in todo])
    except TimeUp as up:
        launched = up.outcomes
        log.warning(f"[{p.label}] seed re-runs cut short: {up}")
    for (slot, _), outcome in zip(todo, launched, strict=False):
        outcomes[slot] = outcome
    slots = [slot for slot in slots if slot in outcomes]  # a timeout may have cut some
    # round 0: a re-run, not a round of the search; its params name the seed it ran with
    jobs.lineage.log_trials(p, [LoggedTrial(numbers[k, seed], rerun_name(k, seed), tags, Trial.from_outcome(
        0, k, {**ranked[k].params, s.seed_key: p.base_seed + seed}, outcomes[k, seed])) for k, seed in slots])
    reruns = {k: [outcomes[slot].value for slot in slots if slot[0] == k and outcomes[slot].value is not None]
              for k in range(len(ranked))}
    out.noise = noise_floor(ranked, reruns, s.final_seeds)
    if out.noise["std"] is not None:
        jobs.lineage.record(p, metrics={"seed_noise_std": out.noise["std"]}, step=jobs.schedule.rounds)
