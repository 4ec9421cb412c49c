"""The coarse-to-fine round loop: sample -> evaluate a whole batch -> zoom, ``rounds`` times.

Hydra-free: ``evaluate`` is any callable that takes one round's list of params and returns one
:class:`Outcome` per trial (a Hydra launcher, a thread pool, or a plain function in tests).
The sampler sees every finished trial so far (``history``); the zoom policy narrows the space.

With a fidelity schedule (pipeline.search.fidelity) each round is a rung: its first trials are the best
of the round before, promoted to continue at the round's higher fidelity, the rest new proposals;
``evaluate`` then also gets ``fidelity=`` and ``continues=`` (per trial, the record it continues
or ``None``). Ranking, the zoom and the best trial compare values of one fidelity only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from pipeline.search.objective import History, Objective, one_fidelity
from pipeline.search.sampler import Sampler, propose, uniform
from pipeline.search.schedule import Schedule
from pipeline.search.space import SearchSpace
from pipeline.search.trial import Outcome, Trial
from pipeline.search.zoom import ZoomPolicy

__all__ = ["Evaluate", "Outcome", "Round", "SearchResult", "StopSearch", "TooManyFailures", "Trial", "search"]


@dataclass(frozen=True)
class Round:
    round: int
    space: SearchSpace
    trials: list[Trial]
    best: Trial | None  # best of all trials so far
    next_space: SearchSpace
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(not t.ok for t in self.trials)


@dataclass(frozen=True)
class SearchResult:
    rounds: list[Round]
    objective: Objective
    stopped: str | None = None  # why the search ended before its schedule did

    @property
    def trials(self) -> list[Trial]:
        return [t for r in self.rounds for t in r.trials]

    @property
    def best(self) -> Trial | None:
        return self.rounds[-1].best if self.rounds else None

    @property
    def failed(self) -> int:
        return sum(r.failed for r in self.rounds)


class StopSearch(Exception):
    """Raised by ``evaluate`` when the search must end now (a time budget ran out); ``outcomes``
    holds the trials of the round that did finish, by their index in the round."""

    def __init__(self, reason: str, outcomes: Mapping[int, Outcome]) -> None:
        super().__init__(reason)
        self.reason, self.outcomes = reason, dict(outcomes)


class TooManyFailures(RuntimeError):
    """More than ``max_failure_rate`` of the trials so far failed; ``result`` holds them."""

    def __init__(self, message: str, result: SearchResult) -> None:
        super().__init__(message)
        self.result = result


DEFAULT_OBJECTIVE, DEFAULT_POLICY = Objective(), ZoomPolicy()
EXPLORE = 1  # the stream of a round's draws from the whole original space, apart from the sampler's
# (round, proposals, space[, first=index in the round][, fidelity=, continues=])
Evaluate = Callable[..., Sequence[Outcome]]


def search(
    space: SearchSpace,
    sampler: Sampler,
    evaluate: Evaluate,
    *,
    rounds: int | None = None,
    trials_per_round: int | None = None,
    schedule: Schedule | None = None,
    objective: Objective = DEFAULT_OBJECTIVE,
    policy: ZoomPolicy = DEFAULT_POLICY,
    max_failure_rate: float = 1.0,
    stream: tuple[int, ...] = (),
    on_round: Callable[[Round], None] | None = None,
    batch: int | None = None,
) -> SearchResult:
    """Run the rounds of ``schedule`` (or ``rounds`` rounds of ``trials_per_round`` trials),
    zooming after each round onto the best successful trials so far (``policy``).

    Raises :class:`TooManyFailures` (after ``on_round`` saw the round) when the failed share of
    all trials so far exceeds ``max_failure_rate``. When ``evaluate`` raises :class:`StopSearch`,
    the round keeps the trials that finished and the result says why it ``stopped``.

    ``batch``: an adaptive sampler (one that models the history) proposes a round ``batch``
    trials at a time, each batch seeing the trials of the batches before it, and ``evaluate`` is
    called per batch with ``first=`` the index of its first trial in the round. ``None`` (and
    every other sampler) proposes and evaluates the whole round at once.
    """
    if schedule is None:
        assert rounds is not None and trials_per_round is not None, "give a schedule or rounds x trials_per_round"
        schedule = Schedule((trials_per_round,) * rounds)
    original = space
    result = SearchResult([], objective)
    for r, size in enumerate(schedule.sizes, start=1):
        k = policy.top_count(size)
        notes_before = len(sampler.notes)
        rung = Rung(schedule.fidelity(r), objective.top(result.rounds[-1].trials, schedule.promotions(r))
                    if r > 1 and schedule.fidelities else [])
        trials, stopped = _run_round(r, size, space, original, sampler, evaluate, objective, policy, result.trials,
                                     stream, batch, rung)
        if not trials:
            return replace(result, stopped=stopped)
        # a rung's values are compared with its own fidelity's only
        top = objective.top(trials if rung.fidelity is not None else result.trials + trials, k)
        next_space = policy.apply(space, original, [t.params for t in top], sampler.scale_of) if top else space
        best = objective.best(one_fidelity(result.trials + trials))  # the highest fidelity with a success
        record = Round(r, space, trials, best, next_space, sampler.notes[notes_before:])
        result.rounds.append(record)
        if on_round is not None:
            on_round(record)
        failed, total = result.failed, len(result.trials)
        if failed / total > max_failure_rate:
            raise TooManyFailures(
                f"{failed} of {total} trials failed, more than max_failure_rate={max_failure_rate}", result)
        if stopped is not None:
            return replace(result, stopped=stopped)
        space = next_space
    return result


@dataclass(frozen=True)
class Rung:
    """A round's fidelity (``None``: no fidelity schedule) and the trials it promotes from the
    round before, best first (they come first in the round)."""

    fidelity: float | None = None
    promoted: list[Trial] = field(default_factory=list)


def _run_round(r: int, size: int, space: SearchSpace, original: SearchSpace, sampler: Sampler, evaluate: Evaluate,
               objective: Objective, policy: ZoomPolicy, before: list[Trial], stream: tuple[int, ...],
               batch: int | None, rung: Rung = Rung()) -> tuple[list[Trial], str | None]:
    """Round ``r``'s trials (and why the search must stop, if it must). The first trials are the
    ``rung``'s promoted ones; the sampler proposes the next ones in ``space``; the last
    ``explore`` are uniform draws from the ``original`` space (the policy's guarantee that
    nothing is ruled out for good)."""
    promoted = len(rung.promoted)
    wide = policy.explore_count(r, size - promoted) if size > promoted else 0
    guided_end = size - wide  # trials [promoted, guided_end) are proposed, [guided_end, size) explore draws
    explore = uniform(original, wide, np.random.default_rng([getattr(sampler, "seed", 0), *stream, r, EXPLORE]),
                      sampler.scale_of)
    step = batch if batch and getattr(sampler, "adaptive", False) else size
    trials: list[Trial] = []
    for b, first in enumerate(range(0, size, step)):
        last = min(first + step, size)
        continues = rung.promoted[first:last]
        guided = max(0, min(last, guided_end) - max(first, promoted))
        # the first batch keeps the round's own stream: a round proposed at once is unchanged
        proposals = [dict(t.params) for t in continues]
        proposals += propose(sampler, space, guided, stream=(*stream, r) if b == 0 else (*stream, r, b),
                             history=History([*before, *trials], objective)) if guided else []
        proposals += explore[max(first, guided_end) - guided_end:max(last, guided_end) - guided_end]
        origins: list[Trial | None] = [*continues, *[None] * (len(proposals) - len(continues))]
        try:
            if rung.fidelity is not None:
                got = evaluate(r, proposals, space, first=first, fidelity=rung.fidelity, continues=origins)
            else:
                got = evaluate(r, proposals, space) if step == size else evaluate(r, proposals, space, first=first)
            outcomes = dict(enumerate(got))
            if len(outcomes) != len(proposals):
                raise RuntimeError(f"evaluate returned {len(outcomes)} outcomes for {len(proposals)} trials")
        except StopSearch as stop:
            outcomes = stop.outcomes
            trials += [_record(r, first + i, proposals[i], o, rung.fidelity, origins[i]) for i, o in
                       sorted(outcomes.items())]
            return trials, stop.reason
        trials += [_record(r, first + i, proposals[i], outcomes[i], rung.fidelity, origins[i])
                   for i in sorted(outcomes)]
    return trials, None


def _record(r: int, i: int, params: Mapping[str, Any], outcome: Outcome, fidelity: float | None,
            continues: Trial | None) -> Trial:
    trial = Trial.from_outcome(r, i, params, outcome)
    if fidelity is None:
        return trial
    return replace(trial, fidelity=fidelity, origin=continues.first if continues is not None else None)
