"""The coarse-to-fine round loop: sample -> evaluate a whole batch -> zoom, ``rounds`` times.

Hydra-free: ``evaluate`` is any callable that takes one round's list of params and returns one
:class:`Outcome` per trial (a Hydra launcher, a thread pool, or a plain function in tests).
The sampler sees every finished trial so far (``history``); the zoom policy narrows the space.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from pipeline.objective import History, Objective
from pipeline.sampler import Sampler, propose, uniform
from pipeline.schedule import Schedule
from pipeline.search import SearchSpace
from pipeline.trial import Outcome, Trial
from pipeline.zoom import ZoomPolicy

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
Evaluate = Callable[..., Sequence[Outcome]]  # (round, proposals, space[, first=index in the round])


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
        trials, stopped = _run_round(r, size, space, original, sampler, evaluate, objective, policy, result.trials,
                                     stream, batch)
        if not trials:
            return replace(result, stopped=stopped)
        top = objective.top(result.trials + trials, k)
        next_space = policy.apply(space, original, [t.params for t in top], sampler.scale_of) if top else space
        record = Round(r, space, trials, top[0] if top else None, next_space, sampler.notes[notes_before:])
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


def _run_round(r: int, size: int, space: SearchSpace, original: SearchSpace, sampler: Sampler, evaluate: Evaluate,
               objective: Objective, policy: ZoomPolicy, before: list[Trial], stream: tuple[int, ...],
               batch: int | None) -> tuple[list[Trial], str | None]:
    """Round ``r``'s trials (and why the search must stop, if it must). The sampler proposes the
    first ``size - explore`` trials in ``space``; the last ``explore`` are uniform draws from the
    ``original`` space (the policy's guarantee that nothing is ruled out for good)."""
    wide = policy.explore_count(r, size)
    guided_end = size - wide  # trials [guided_end, size) are the explore draws
    explore = uniform(original, wide, np.random.default_rng([getattr(sampler, "seed", 0), *stream, r, EXPLORE]),
                      sampler.scale_of)
    step = batch if batch and getattr(sampler, "adaptive", False) else size
    trials: list[Trial] = []
    for b, first in enumerate(range(0, size, step)):
        last = min(first + step, size)
        guided = max(0, min(last, guided_end) - first)
        # the first batch keeps the round's own stream: a round proposed at once is unchanged
        proposals = propose(sampler, space, guided, stream=(*stream, r) if b == 0 else (*stream, r, b),
                            history=History([*before, *trials], objective)) if guided else []
        proposals += explore[max(first, guided_end) - guided_end:max(last, guided_end) - guided_end]
        try:
            got = evaluate(r, proposals, space) if step == size else evaluate(r, proposals, space, first=first)
            outcomes = dict(enumerate(got))
            if len(outcomes) != len(proposals):
                raise RuntimeError(f"evaluate returned {len(outcomes)} outcomes for {len(proposals)} trials")
        except StopSearch as stop:
            trials += [Trial.from_outcome(r, first + i, proposals[i], o) for i, o in sorted(stop.outcomes.items())]
            return trials, stop.reason
        trials += [Trial.from_outcome(r, first + i, proposals[i], outcomes[i]) for i in sorted(outcomes)]
    return trials, None
