"""The one shape of a trial, from the launcher's answer to the result files and the samplers.

An :class:`Outcome` is what one launched job gave back; a :class:`Trial` is that outcome placed
in the search (round, index within the round, the params it was proposed with). Everything
downstream (zoom, samplers' ``history``, result files, leaderboard, lineage) reads ``Trial``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


def finite(value: float | None) -> bool:
    """A usable objective value: a number that is neither NaN nor infinite."""
    return value is not None and math.isfinite(value)


@dataclass(frozen=True)
class Outcome:
    """What one job returned: a finite ``value``, or ``None`` with an ``error``; the final
    metrics the task left (``metrics.json``) and the MLflow run it logged, when known."""

    value: float | None
    error: str | None = None
    job_dir: str | None = None
    run_id: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    retry: bool = False  # failed for the infrastructure's sake (pipeline.errors.infrastructure): run again


@dataclass(frozen=True)
class Trial:
    """One evaluated configuration. ``round`` counts from 1, ``index`` within its round;
    ``fidelity`` is the budget it was trained with (``None``: the task's own, the same for all);
    ``origin`` is ``(round, index)`` of the configuration's first trial when this one continues
    it at a higher fidelity (promoted; the same MLflow run and checkpoint)."""

    round: int
    index: int
    params: Mapping[str, Any]
    value: float | None
    error: str | None = None
    job_dir: str | None = None
    run_id: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    fidelity: float | None = None
    origin: tuple[int, int] | None = None

    @classmethod
    def from_outcome(cls, round: int, index: int, params: Mapping[str, Any], outcome: Outcome) -> Trial:
        """A non-finite value becomes a failure: the objective must be a number to rank."""
        value, error = outcome.value, outcome.error
        if value is not None and not math.isfinite(value):
            value, error = None, error or f"non-finite objective {outcome.value}"
        return cls(round, index, dict(params), value, error, outcome.job_dir, outcome.run_id,
                   dict(outcome.metrics))

    @property
    def first(self) -> tuple[int, int]:
        """``(round, index)`` of the configuration's first trial: this one, or the one it continues."""
        return self.origin or (self.round, self.index)

    @property
    def ok(self) -> bool:
        return finite(self.value)

    @property
    def name(self) -> str:
        """``r2-t05``: round and index, as in the leaderboard and MLflow run names."""
        return trial_name(self.round, self.index)

    @property
    def held_out(self) -> dict[str, float]:
        """Final ``test_*`` metrics: reported, never used to choose."""
        return {k: v for k, v in self.metrics.items() if k.startswith("test_")}

    def row(self) -> dict[str, Any]:
        """The trial as a row of ``trials.yaml``."""
        row = {"round": self.round, "index": self.index, "params": dict(self.params), "value": self.value,
               "error": self.error, "job_dir": self.job_dir}
        if self.run_id:
            row["mlflow_run_id"] = self.run_id
        if self.fidelity is not None:
            row["fidelity"] = self.fidelity
        if self.origin is not None:
            row["continues"] = trial_name(*self.origin)
        return row


def trial_name(round: int, index: int, search: int | None = None) -> str:
    """The one name of a trial everywhere (terminal, leaderboard, MLflow run names): ``r2-t05``, or
    ``c1-r2-t05`` for search ``search`` of a crossed sweep."""
    name = f"r{round}-t{index:02d}"
    return name if search is None else f"c{search}-{name}"


def latest(trials: Sequence[Trial]) -> list[Trial]:
    """Each configuration once, at the last trial that trained it (a promoted trial replaces
    the one it continues), in the order of ``trials``."""
    last = {t.first: t for t in trials}
    return [t for t in trials if last[t.first] is t]
