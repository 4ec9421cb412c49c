"""The budget of a sweep: ``n_trials`` (the name Optuna's sweeper uses) -> the rounds and the
number of trials in each. Printed by the dry run.

Rule (``rounds`` and ``trials_per_round`` left null): ``rounds = clamp(round(sqrt(n_trials / 3)),
1, 8)``, the trials split as evenly as possible, later rounds taking the remainder:

    n_trials   10    20       50             100                     200       500
    rounds     2     3        4              6                       8         8
    sizes      5x2   6,7,7    12,12,13,13    16,16,17,17,17,17       25x8      62x4, 63x4

More rounds give the zoom more steps; each round still needs enough trials to rank (the square
root keeps rounds and round sizes growing together: 48 trials -> 4 x 12, the best split measured
on this app's search, README > Performance). Explicit ``rounds`` and/or ``trials_per_round``
override the rule and must agree with ``n_trials`` when that is set too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.errors import ConfigError

MAX_ROUNDS = 8
DEFAULT_N_TRIALS = 48  # when neither n_trials nor rounds x trials_per_round is set


def default_rounds(n_trials: int) -> int:
    return min(MAX_ROUNDS, max(1, round(math.sqrt(n_trials / 3))))


def split(n_trials: int, rounds: int) -> tuple[int, ...]:
    """``n_trials`` over ``rounds`` as evenly as possible, the remainder to the last rounds."""
    base, extra = divmod(n_trials, rounds)
    return tuple(base + (r >= rounds - extra) for r in range(rounds))


@dataclass(frozen=True)
class Schedule:
    """Trials per round, in order. A fidelity sweep (pipeline.search.fidelity) also gives each round's
    fidelity and how many of its trials are promoted from the round before (its first ones)."""

    sizes: tuple[int, ...]
    fidelities: tuple[float, ...] = ()
    promoted: tuple[int, ...] = ()

    def fidelity(self, r: int) -> float | None:
        """Round ``r``'s (from 1) fidelity; ``None`` without a fidelity schedule."""
        return self.fidelities[r - 1] if self.fidelities else None

    def promotions(self, r: int) -> int:
        return self.promoted[r - 1] if self.promoted else 0

    @property
    def rounds(self) -> int:
        return len(self.sizes)

    @property
    def total(self) -> int:
        return sum(self.sizes)

    def start(self, r: int) -> int:
        """How many trials come before round ``r`` (from 1)."""
        return sum(self.sizes[: r - 1])

    def describe(self) -> str:
        if len(set(self.sizes)) == 1:
            return f"{self.rounds} rounds x {self.sizes[0]} trials = {self.total} trials"
        return f"{self.rounds} rounds of {', '.join(map(str, self.sizes))} trials = {self.total} trials"

    @classmethod
    def plan(cls, n_trials: int | None, rounds: int | None = None, trials_per_round: int | None = None) -> Schedule:
        """The schedule for the settings; :class:`ConfigError` when they disagree."""
        for key, value in (("n_trials", n_trials), ("rounds", rounds), ("trials_per_round", trials_per_round)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ConfigError(f"hydra.sweeper.{key}", value, "must be a positive integer (or null)")
        if n_trials is None:
            if rounds is None or trials_per_round is None:
                raise ConfigError("hydra.sweeper.n_trials", None, "set the number of trials (or both rounds and "
                                  "trials_per_round)")
            return cls((trials_per_round,) * rounds)
        if rounds is not None and trials_per_round is not None and rounds * trials_per_round != n_trials:
            raise ConfigError("hydra.sweeper.n_trials", n_trials, f"disagrees with rounds={rounds} x "
                              f"trials_per_round={trials_per_round} = {rounds * trials_per_round}; set one or "
                              "the other")
        if trials_per_round is not None:
            if n_trials % trials_per_round:
                raise ConfigError("hydra.sweeper.n_trials", n_trials, f"is not a multiple of trials_per_round="
                                  f"{trials_per_round}; leave trials_per_round null to split it")
            return cls((trials_per_round,) * (n_trials // trials_per_round))
        if rounds is not None and rounds > n_trials:
            raise ConfigError("hydra.sweeper.rounds", rounds, f"more rounds than trials (n_trials={n_trials})")
        return cls(split(n_trials, rounds or default_rounds(n_trials)))
