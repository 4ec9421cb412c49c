"""Jobs: what the sweep hands a launcher. Job numbers are fixed by position (a search reserves
``n_trials`` numbers, round after round; the seed re-runs follow all rounds of all searches), so a
resumed sweep gives every trial the number, directory and run name it had. A sweep extended with
a larger ``n_trials`` adds a segment of rounds numbered after everything before it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pipeline.search.fidelity import Fidelity
from pipeline.search.schedule import Schedule
from pipeline.search.space import quote
from pipeline.search.trial import Outcome
from pipeline.sweep.files import SweepDir
from pipeline.sweep.lineage import Lineage
from pipeline.sweep.plan import Search


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

    @property
    def parallelism(self) -> int | None:
        """How many jobs it runs at once: 1 one after another, ``None`` not known (a cluster: a
        whole round is handed over at once)."""

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


@dataclass(frozen=True)
class JobRecipe:
    """The one recipe for a job of a search: its directory, and its task overrides in order: the
    search's (fixed, crossed, searched values), ``extra`` ones (a re-run's seed), the fidelity key
    and where the trial keeps its checkpoint (``home``: its first job's directory, so every rung
    continues there), then the lineage's (where the task logs its MLflow run)."""

    sweep_dir: SweepDir
    crossed: bool
    fidelity: Fidelity
    lineage: Lineage

    def directory(self, search: Search, number: int, *, final: bool = False) -> Path:
        return self.sweep_dir.job_dir(self.sweep_dir.job_subdir(number, search.index, self.crossed, final=final))

    def job(self, search: Search, number: int, name: str, tags: Mapping[str, str], params: Mapping[str, Any], *,
            extra: Sequence[str] = (), fidelity: float | None = None, home: Path | None = None,
            final: bool = False) -> Job:
        subdir = self.sweep_dir.job_subdir(number, search.index, self.crossed, final=final)
        overrides = [*search.overrides(dict(params)), *extra]
        if fidelity is not None:
            overrides.append(f"{self.fidelity.key}={fidelity if isinstance(fidelity, int) else repr(float(fidelity))}")
            if self.fidelity.resume_key:
                where = home if home is not None else self.sweep_dir.job_dir(subdir)
                overrides.append(f"{self.fidelity.resume_key}={quote(str(where.resolve()))}")
        overrides += self.lineage.trial_overrides(search, name, number, tags)
        return Job(number, subdir, tuple(overrides), name, tags)


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
