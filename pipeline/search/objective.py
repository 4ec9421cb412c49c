"""What a sweep optimizes: the direction and the metric's name, and the one place that decides
whether a trial succeeded, which of two values is better and how trials rank."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from pipeline.search.trial import Trial, finite


class Direction(StrEnum):
    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"


@dataclass(frozen=True)
class Objective:
    """``direction`` of the value a task returns; ``metric`` names it (``None``: "objective")."""

    direction: Direction = Direction.MINIMIZE
    metric: str | None = None

    @property
    def label(self) -> str:
        return self.metric or "objective"

    @staticmethod
    def ok(trial: Trial) -> bool:
        return finite(trial.value)

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` is strictly better than ``b``."""
        return a < b if self.direction is Direction.MINIMIZE else a > b

    def rank(self, trials: Iterable[Trial]) -> list[Trial]:
        """The successful trials, best first; ties keep their order (earlier first)."""
        ok = [t for t in trials if finite(t.value)]
        return sorted(ok, key=lambda t: t.value, reverse=self.direction is Direction.MAXIMIZE)

    def best(self, trials: Iterable[Trial]) -> Trial | None:
        ranked = self.rank(trials)
        return ranked[0] if ranked else None

    def top(self, trials: Sequence[Trial], k: int) -> list[Trial]:
        return self.rank(trials)[:k]


class History(tuple):
    """The trials so far, oldest first, as a sampler receives them, with the sweep's
    ``objective``: a model-guided sampler needs to know which values are better."""

    objective: Objective

    def __new__(cls, trials: Iterable[Trial] = (), objective: Objective | None = None) -> History:
        history = super().__new__(cls, trials)
        history.objective = objective or Objective()
        return history


def one_fidelity(trials: Sequence[Trial], enough: int = 1) -> list[Trial]:
    """The trials of one fidelity, failures included, for a sampler that models values (values
    of different fidelities are not comparable): the highest fidelity with at least ``enough``
    successful trials, else the one with the most. Without fidelities: all ``trials``."""
    levels = sorted({t.fidelity for t in trials if t.fidelity is not None})
    if not levels:
        return list(trials)
    counts = {f: sum(1 for t in trials if t.fidelity == f and finite(t.value)) for f in levels}
    full = [f for f in levels if counts[f] >= enough]
    chosen = full[-1] if full else max(levels, key=lambda f: (counts[f], f))
    return [t for t in trials if t.fidelity == chosen]
