"""A search's trials as jobs: each batch the round loop proposes (pipeline.search.rounds.Batch)
becomes jobs on the launcher, trials that finished before an interruption are read back instead
of run again, and after each round its files, MLflow records and the resume state are written,
so an interrupted sweep resumes where it stopped."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pipeline.search.rounds import Batch, Round, SearchResult, StopSearch
from pipeline.search.schedule import Schedule
from pipeline.search.space import Interval, SearchSpace
from pipeline.search.trial import Outcome, Trial, trial_name
from pipeline.sweep.files import SweepDir, finished_outcome, write_space
from pipeline.sweep.jobs import Job, JobNumbers, JobRecipe
from pipeline.sweep.launching import Launching, TimeUp
from pipeline.sweep.lineage import RUNG, TRIAL, Lineage, LoggedTrial
from pipeline.sweep.settings import SweepSettings
from pipeline.sweep.state import SweepState
from pipeline.sweep.summary import Outcomes, Reproduce, search_results

log = logging.getLogger("pipeline.sweep")


class Progress(Protocol):
    """What the sweep tells its progress display (pipeline.sweep.progress.SweepProgress)."""

    def watch(self, label: str, r: int, job_dirs: Sequence[Path], params: Sequence[Mapping[str, Any]],
              costs: Sequence[float] = ()) -> None: ...

    def finish_round(self) -> None: ...

    def close(self) -> None: ...


class NoProgress:
    """Progress display that shows nothing."""

    def watch(self, label: str, r: int, job_dirs: Sequence[Path], params: Sequence[Mapping[str, Any]],
              costs: Sequence[float] = ()) -> None:
        pass

    def finish_round(self) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class TrialJobs:
    """The jobs of one search (``out.search``): :meth:`evaluate` for the round loop,
    :meth:`after_round` for its ``on_round``."""

    out: Outcomes
    settings: SweepSettings
    schedule: Schedule
    numbers: JobNumbers
    recipe: JobRecipe
    launching: Launching
    lineage: Lineage
    state: SweepState
    sweep_dir: SweepDir
    reproduce: Reproduce
    progress: Callable[[], Progress]  # the runner's display of the moment

    def ids(self, r: int, i: int, origin: tuple[int, int] | None = None) -> tuple[int, str, dict[str, str]]:
        """Trial ``i`` of round ``r``: its job number, MLflow run name and run tags (in a fidelity
        sweep ``rung``, and ``trial``: the configuration's first trial, whose run it extends)."""
        p = self.out.search
        index = p.index if self.recipe.crossed else None
        tags = {"round": str(r), "sampler": p.sampler_name}
        if self.schedule.fidelities:
            tags[RUNG] = str(r)
            tags[TRIAL] = trial_name(*(origin or (r, i)), search=index)
        return self.numbers.trial(p.index, r, i), trial_name(r, i, search=index), tags

    def evaluate(self, batch: Batch) -> list[Outcome]:
        """Launch a batch's trials; trials that finished before an interruption are read back. In a
        fidelity sweep each trial gets the round's fidelity and, to keep its checkpoint in, the job
        directory of its configuration's first trial."""
        p, r = self.out.search, batch.round
        if batch.first == 0:
            write_space(p.directory.zoom_file(r), batch.space,
                        header=f"space sampled in round {r} of {self.sweep_dir.root}")
        finished = self.lineage.finished(p) if self.settings.resume else {}
        outcomes: dict[int, Outcome] = {}
        jobs: list[tuple[int, Job]] = []
        job_dirs = []
        for k, params in enumerate(batch.proposals):
            origin = batch.continues[k] if batch.continues else None
            number, name, tags = self.ids(r, batch.first + k, origin.first if origin else None)
            job_dirs.append(self.recipe.directory(p, number))
            done = finished_outcome(job_dirs[-1], finished.get(number))
            if done is not None:
                outcomes[k] = done
                continue
            home = self.recipe.directory(p, self.numbers.trial(p.index, *origin.first)) if origin else None
            jobs.append((k, self.recipe.job(p, number, name, tags, params, fidelity=batch.fidelity, home=home)))
        if batch.first == 0 and self.settings.resume:  # said once per round, also when it runs in batches
            self._say_finished(r, finished)
        costs = [self._cost(r, batch.fidelity, bool(batch.continues and batch.continues[k]))
                 for k in range(len(batch.proposals))] if batch.fidelity is not None else []
        self.progress().watch(p.label, r, job_dirs, batch.proposals, costs)
        stopped = self._launch(jobs, outcomes)
        self.progress().finish_round()
        if stopped is not None:
            raise StopSearch(stopped, outcomes)
        return [outcomes[k] for k in range(len(batch.proposals))]

    def _launch(self, jobs: Sequence[tuple[int, Job]], outcomes: dict[int, Outcome]) -> str | None:
        """Launch ``jobs`` into ``outcomes`` (by index in the batch); why the search must stop, if it must."""
        stopped = None
        try:
            launched = self.launching.launch([j for _, j in jobs])
        except TimeUp as up:
            launched, stopped = up.outcomes, str(up)
        for (k, job), outcome in zip(jobs, launched, strict=False):
            outcomes[k] = outcome
            if outcome.value is None:  # counted in the progress; a line of its own off a terminal or when verbose
                log.info(f"[{self.out.search.label}] trial {job.name} failed: {outcome.error}")
        return stopped

    def _say_finished(self, r: int, finished: Mapping[int, Outcome]) -> None:
        p, size = self.out.search, self.schedule.sizes[r - 1]
        numbers = [self.numbers.trial(p.index, r, i) for i in range(size)]
        done = sum(finished_outcome(self.recipe.directory(p, n), finished.get(n)) is not None for n in numbers)
        if done:
            log.info(f"[{p.label}] round {r}: {done} trials already finished, {size - done} to run")

    def _cost(self, r: int, fidelity: float, continued: bool) -> float:
        """The fidelity a trial of round ``r`` spends: what it adds to its checkpoint, else all."""
        below = self.schedule.fidelity(r - 1) if r > 1 else None
        return fidelity - below if continued and below is not None and self.settings.fidelity.resume_key \
            else fidelity

    def after_round(self, record: Round) -> None:
        """Write the next round's space, the results so far and the state; log the round once."""
        out, s = self.out, self.settings
        p = out.search
        write_space(p.directory.zoom_file(record.round + 1), record.next_space,
                    header=f"zoomed after round {record.round} of {self.sweep_dir.root}")
        best = record.best
        shown = f"{s.objective.metric or 'objective'}={best.value:.4g}" if best is not None else "none"
        log.info(f"[{p.label}] round {record.round}/{self.schedule.rounds} done: {len(record.trials)} trials, "
                 f"{record.failed} failed; best so far {shown}")
        for note in record.notes:
            log.warning(f"[{p.label}] {note}")
        self.lineage.log_trials(p, [LoggedTrial(*self.ids(t.round, t.index, t.origin), t) for t in record.trials])
        logged = self.state.logged(p.index)
        if record.round > logged:  # a resumed round is logged once
            metrics = {"best_value": best.value} if best is not None else {}
            self.lineage.record(p, metrics={**metrics, "failed_trials": record.failed, **bounds(record.space)},
                                step=record.round, files=[p.directory.zoom_file(record.round)], folder="zoom")
        out.result = SearchResult([*(out.result.rounds if out.result else []), record], s.objective)
        p.directory.write_results(search_results(out, s, self.reproduce))
        p.directory.write_trials(out.result.trials)
        self.state.rounds_logged[str(p.index)] = max(logged, record.round)
        self.state.save(self.sweep_dir.state)


def bounds(space: SearchSpace) -> dict[str, float]:
    """Interval bounds as metrics (``zoom/optimizer.lr/low``), so the narrowing is a chart."""
    out = {}
    for dim in space.dims:
        if isinstance(dim, Interval):
            out[f"zoom/{dim.key}/low"] = float(dim.low)
            out[f"zoom/{dim.key}/high"] = float(dim.high)
    return out


__all__ = ["NoProgress", "Progress", "TrialJobs", "Trial", "bounds"]
