"""The coarse-to-fine round loop: sample -> evaluate a whole batch -> zoom, ``rounds`` times.

Hydra-free: ``evaluate`` is any callable that takes one round's list of params and returns one
:class:`Outcome` per trial (a Hydra launcher, a thread pool, or a plain function in tests).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.search import SearchSpace
from pipeline.zoom import MIN_WIDTH, top_trials, zoom
from plugins.samplers.base import Sampler


@dataclass
class Outcome:
    """What one trial returned: a finite ``value``, or ``None`` with an ``error``."""

    value: float | None
    error: str | None = None
    job_dir: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Trial:
    round: int
    index: int  # position within its round
    params: dict[str, Any]
    value: float | None
    error: str | None = None
    job_dir: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.value is not None and math.isfinite(self.value)

    def as_dict(self) -> dict[str, Any]:
        return {"round": self.round, "index": self.index, "params": self.params, "value": self.value,
                "error": self.error, "job_dir": self.job_dir, **({"extra": self.extra} if self.extra else {})}


@dataclass
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


@dataclass
class SearchResult:
    rounds: list[Round]
    direction: str

    @property
    def trials(self) -> list[Trial]:
        return [t for r in self.rounds for t in r.trials]

    @property
    def best(self) -> Trial | None:
        return self.rounds[-1].best if self.rounds else None

    @property
    def failed(self) -> int:
        return sum(r.failed for r in self.rounds)


class TooManyFailures(RuntimeError):
    """More than ``max_failure_rate`` of the trials so far failed; ``result`` holds them."""

    def __init__(self, message: str, result: SearchResult) -> None:
        super().__init__(message)
        self.result = result


Evaluate = Callable[[int, Sequence[Mapping[str, Any]], SearchSpace], Sequence[Outcome]]


def top_count(trials_per_round: int, top_k: int | None, top_fraction: float) -> int:
    """How many of the best trials define the next round's space."""
    if top_k:
        return top_k
    return max(1, math.ceil(top_fraction * trials_per_round))


def search(
    space: SearchSpace,
    sampler: Sampler,
    evaluate: Evaluate,
    *,
    rounds: int,
    trials_per_round: int,
    direction: str = "minimize",
    top_k: int | None = None,
    top_fraction: float = 0.25,
    margin: float = 0.1,
    min_width: float = MIN_WIDTH,
    mode: str = "span",
    shrink: float = 0.5,
    max_failure_rate: float = 1.0,
    stream: tuple[int, ...] = (),
    on_round: Callable[[Round], None] | None = None,
) -> SearchResult:
    """Run ``rounds`` rounds of ``trials_per_round`` trials, zooming after each round onto the
    ``top_k`` (or ``top_fraction`` of a round) best successful trials so far (``mode`` and
    ``shrink``: see :mod:`pipeline.zoom`).

    Raises :class:`TooManyFailures` (after ``on_round`` saw the round) when the failed share of
    all trials so far exceeds ``max_failure_rate``.
    """
    original = space
    k = top_count(trials_per_round, top_k, top_fraction)
    result = SearchResult([], direction)
    for r in range(1, rounds + 1):
        notes_before = len(sampler.notes)
        proposals = sampler.sample(space, trials_per_round, stream=(*stream, r))
        outcomes = list(evaluate(r, proposals, space))
        if len(outcomes) != len(proposals):
            raise RuntimeError(f"evaluate returned {len(outcomes)} outcomes for {len(proposals)} trials")
        trials = []
        for i, (params, out) in enumerate(zip(proposals, outcomes, strict=True)):
            value = out.value
            error = out.error
            if value is not None and not math.isfinite(value):
                value, error = None, error or f"non-finite objective {out.value}"
            trials.append(Trial(r, i, dict(params), value, error, out.job_dir, dict(out.extra)))
        everything = result.trials + trials
        ranked = top_trials([{"value": t.value, "trial": t} for t in everything if t.ok], k, direction)
        top = [entry["trial"] for entry in ranked]
        next_space = zoom(space, original, [t.params for t in top], margin=margin, scale_of=sampler.scale_of,
                          min_width=min_width, mode=mode, shrink=shrink) if top else space
        record = Round(r, space, trials, top[0] if top else None, next_space, sampler.notes[notes_before:])
        result.rounds.append(record)
        if on_round is not None:
            on_round(record)
        failed = result.failed
        total = len(result.trials)
        if failed / total > max_failure_rate:
            raise TooManyFailures(
                f"{failed} of {total} trials failed, more than max_failure_rate={max_failure_rate}", result)
        space = next_space
    return result
