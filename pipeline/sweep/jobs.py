"""Jobs: what the sweep hands a launcher. Job numbers are fixed by position (a search reserves
``n_trials`` numbers, round after round; the seed re-runs follow all rounds of all searches), so a
resumed sweep gives every trial the number, directory and run name it had. A sweep extended with
a larger ``n_trials`` adds a segment of rounds numbered after everything before it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pipeline.search import trial
from pipeline.search.schedule import Schedule
from pipeline.search.trial import Outcome


@dataclass(frozen=True)
class Job:
    """One launch: Hydra job ``number`` in ``subdir`` of the sweep directory, with the task
    ``overrides``; ``name`` and ``tags`` label its MLflow run."""

    number: int
    subdir: str
    overrides: tuple[str, ...]
    name: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)


class Launcher(Protocol):
    """Runs jobs and returns one :class:`Outcome` per job, in order (a Hydra launcher behind
    ``hydra_plugins/zoom_sweeper/_launcher.py``; a plain function in tests)."""

    def launch(self, jobs: Sequence[Job]) -> list[Outcome]: ...


@dataclass(frozen=True)
class JobNumbers:
    searches: int
    segments: tuple[Schedule, ...]  # the rounds as first planned, then each extension's
    final_top: int = 0
    final_seeds: int = 0

    @property
    def schedule(self) -> Schedule:
        """Every round of every segment, in order (round numbers run on across segments)."""
        if len(self.segments) == 1:  # as planned (with its rungs' fidelities, if any)
            return self.segments[0]
        return Schedule(tuple(size for segment in self.segments for size in segment.sizes))

    def _block(self, segment: Schedule) -> int:
        """Numbers a segment takes: its rounds for every search, then its seed re-runs."""
        return self.searches * (segment.total + self.final_top * self.final_seeds)

    def trial(self, search: int, r: int, i: int) -> int:
        """Trial ``i`` of round ``r`` (from 1) of search ``search``."""
        base = 0
        for segment in self.segments:
            if r <= segment.rounds:
                return base + search * segment.total + segment.start(r) + i
            base, r = base + self._block(segment), r - segment.rounds
        raise ValueError(f"round {r} is past the schedule")

    def seed_rerun(self, search: int, k: int, s: int) -> int:
        """Re-run with seed offset ``s`` (from 1) of the ``k``-th best configuration (after the
        last segment's rounds)."""
        last = self.segments[-1]
        base = sum(self._block(segment) for segment in self.segments[:-1]) + self.searches * last.total
        return base + (search * self.final_top + k) * self.final_seeds + s - 1

    @property
    def total(self) -> int:
        return sum(map(self._block, self.segments))


def trial_name(search: int, crossed: bool, r: int, i: int) -> str:
    """The trial's MLflow run name: ``r2-t05``, or ``c1-r2-t05`` in a crossed sweep."""
    return f"c{search}-{trial.trial_name(r, i)}" if crossed else trial.trial_name(r, i)


def consecutive(jobs: Sequence[Job]) -> list[list[Job]]:
    """``jobs`` cut into runs of consecutive numbers (launchers number the jobs of one call
    consecutively from its first)."""
    chunks: list[list[Job]] = []
    for job in jobs:
        if chunks and chunks[-1][-1].number + 1 == job.number:
            chunks[-1].append(job)
        else:
            chunks.append([job])
    return chunks
