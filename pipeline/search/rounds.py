"""The coarse-to-fine round loop: sample -> evaluate -> zoom, round after round.

Hydra-free: ``evaluate`` is any callable that takes a :class:`Batch` (a round's proposals, or
a launcher's width of them) and returns one :class:`Outcome` per proposal (the sweep's jobs on a
Hydra launcher, a thread pool, or a plain function in tests). The sampler sees every finished
trial so far (``history``); the zoom policy narrows the space.

With a fidelity schedule (pipeline.search.fidelity) each round is a rung: its first trials are the
best of the round before, promoted to continue at the round's higher fidelity, the rest new
proposals; the batch then carries the ``fidelity`` and, per proposal, the trial it ``continues``
(``None`` for a new one). Ranking, the zoom and the best trial compare values of one fidelity only.
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
from pipeline.search.zoom import ZoomPolicy, zoom

__all__ = ["Batch", "Evaluate", "Outcome", "Round", "SearchResult", "StopSearch", "TooManyFailures", "Trial",
           "search"]


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


@dataclass(frozen=True)
class Batch:
    """What ``evaluate`` gets: proposals of round ``round`` (from 1) in ``space``, the first of them
    at index ``first`` of the round; in a fidelity sweep the round's ``fidelity`` and, per
    proposal, the trial it ``continues`` (promoted from the round before) or ``None``."""

    round: int
    proposals: Sequence[Mapping[str, Any]]
    space: SearchSpace
    first: int = 0
    fidelity: float | None = None
    continues: Sequence[Trial | None] = ()


Evaluate = Callable[[Batch], Sequence[Outcome]]


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
    called per batch. ``None`` (and every other sampler) proposes and evaluates the whole round
    at once.
    """
    if schedule is None:
        assert rounds is not None and trials_per_round is not None, "give a schedule or rounds x trials_per_round"
        schedule = Schedule((trials_per_round,) * rounds)
    return _Rounds(space, sampler, evaluate, schedule, objective, policy, stream, batch).run(max_failure_rate,
                                                                                            on_round)


@dataclass(frozen=True)
class Rung:
    """A round's fidelity (``None``: no fidelity schedule) and the trials it promotes from the
    round before, best first (they come first in the round)."""

    fidelity: float | None = None
    promoted: list[Trial] = field(default_factory=list)


@dataclass
class _Rounds:
    """One search's rounds: what :func:`search` runs."""

    original: SearchSpace
    sampler: Sampler
    evaluate: Evaluate
    schedule: Schedule
    objective: Objective
    policy: ZoomPolicy
    stream: tuple[int, ...]
    batch: int | None

    def run(self, max_failure_rate: float, on_round: Callable[[Round], None] | None) -> SearchResult:
        space, objective = self.original, self.objective
        result = SearchResult([], objective)
        for r, size in enumerate(self.schedule.sizes, start=1):
            notes_before = len(self.sampler.notes)
            rung = Rung(self.schedule.fidelity(r), objective.top(result.rounds[-1].trials, self.schedule.promotions(r))
                        if r > 1 and self.schedule.fidelities else [])
            trials, stopped = self._round(r, size, space, result.trials, rung)
            if not trials:
                return replace(result, stopped=stopped)
            # a rung's values are compared with its own fidelity's only
            top = objective.top(trials if rung.fidelity is not None else result.trials + trials,
                                self.policy.top_count(size))
            next_space = zoom(space, self.original, [t.params for t in top], policy=self.policy,
                              scale_of=self.sampler.scale_of)
            best = objective.best(one_fidelity(result.trials + trials))  # the highest fidelity with a success
            record = Round(r, space, trials, best, next_space, self.sampler.notes[notes_before:])
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

    def _round(self, r: int, size: int, space: SearchSpace, before: list[Trial],
               rung: Rung) -> tuple[list[Trial], str | None]:
        """Round ``r``'s trials (and why the search must stop, if it must). The first trials are the
        ``rung``'s promoted ones; the sampler proposes the next ones in ``space``; the last
        ``explore`` are uniform draws from the original space (the policy's guarantee that nothing
        is ruled out for good)."""
        promoted = len(rung.promoted)
        wide = self.policy.explore_count(r, size - promoted) if size > promoted else 0
        guided_end = size - wide  # trials [promoted, guided_end) are proposed, [guided_end, size) explore draws
        explore = uniform(self.original, wide, np.random.default_rng([self.sampler.seed, *self.stream, r, EXPLORE]),
                          self.sampler.scale_of)
        step = self.batch if self.batch and self.sampler.adaptive else size
        trials: list[Trial] = []
        for b, first in enumerate(range(0, size, step)):
            last = min(first + step, size)
            continues = rung.promoted[first:last]
            guided = max(0, min(last, guided_end) - max(first, promoted))
            # the first batch keeps the round's own stream: a round proposed at once is unchanged
            proposals = [dict(t.params) for t in continues]
            proposals += propose(self.sampler, space, guided, stream=(*self.stream, r) if b == 0 else
                                 (*self.stream, r, b), history=History([*before, *trials], self.objective)) \
                if guided else []
            proposals += explore[max(first, guided_end) - guided_end:max(last, guided_end) - guided_end]
            origins: list[Trial | None] = [*continues, *[None] * (len(proposals) - len(continues))]
            batch = Batch(r, proposals, space, first, rung.fidelity, origins if rung.fidelity is not None else ())
            try:
                outcomes = dict(enumerate(self.evaluate(batch)))
                if len(outcomes) != len(proposals):
                    raise RuntimeError(f"evaluate returned {len(outcomes)} outcomes for {len(proposals)} trials")
            except StopSearch as stop:
                trials += [_record(batch, i, o, origins[i]) for i, o in sorted(stop.outcomes.items())]
                return trials, stop.reason
            trials += [_record(batch, i, outcomes[i], origins[i]) for i in sorted(outcomes)]
        return trials, None


def _record(batch: Batch, i: int, outcome: Outcome, continues: Trial | None) -> Trial:
    """Proposal ``i`` of ``batch`` with its outcome, as a trial of the search."""
    trial = Trial.from_outcome(batch.round, batch.first + i, batch.proposals[i], outcome)
    if batch.fidelity is None:
        return trial
    return replace(trial, fidelity=batch.fidelity, origin=continues.first if continues is not None else None)
