"""Drives a planned sweep: for each search the rounds (pipeline.search.rounds), then the seed re-runs of
the best configurations, then the analysis; writes the sweep directory and the MLflow run tree
as it goes, so an interrupted sweep resumes where it stopped (finished jobs are read back, never
run twice). Hydra-free: jobs go to a :class:`pipeline.sweep.jobs.Launcher`."""

from __future__ import annotations

import logging
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.atomic import write_yaml_atomic
from pipeline.errors import InfrastructureDown, infrastructure
from pipeline.registry import resolve_callable
from pipeline.search.objective import one_fidelity
from pipeline.search.rounds import Round, SearchResult, StopSearch, TooManyFailures, search
from pipeline.search.space import Interval, SearchSpace, quote
from pipeline.search.trial import Outcome, Trial
from pipeline.sweep.analysis import steps as analysis
from pipeline.sweep.files import SweepDir, finished_outcome, write_best_config, write_space
from pipeline.sweep.jobs import Job, JobNumbers, Launcher, trial_name
from pipeline.sweep.lineage import NullLineage
from pipeline.sweep.plan import Search, proposes
from pipeline.sweep.report import final_report, leaderboard, write_csv
from pipeline.sweep.settings import SweepSettings
from pipeline.sweep.state import SweepState
from pipeline.sweep.summary import (
    Outcomes,
    Reproduce,
    crossed_summary,
    leaderboard_trials,
    noise_floor,
    ranked_searches,
    search_results,
)

log = logging.getLogger("pipeline.sweep")
RETRY_WAITS = (5.0, 15.0, 45.0)  # seconds before each relaunch of trials the infrastructure failed


class TimeUp(Exception):
    """The sweep's ``timeout_s`` passed: no further trial starts; ``outcomes`` finished before."""

    def __init__(self, reason: str, outcomes: list[Outcome]) -> None:
        super().__init__(reason)
        self.outcomes = outcomes


class NoProgress:
    """Progress display that shows nothing (pipeline.sweep.progress.SweepProgress has the same calls)."""

    def watch(self, label: str, r: int, job_dirs: Sequence[Any], params: Sequence[Mapping[str, Any]],
              costs: Sequence[float] = ()) -> None:
        pass

    def finish_round(self) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class SweepRunner:
    settings: SweepSettings
    searches: list[Search]
    launcher: Launcher
    sweep_dir: SweepDir
    state: SweepState
    reproduce: Reproduce
    lineage: NullLineage = field(default_factory=NullLineage)
    progress: Any = field(default_factory=NoProgress)

    def __post_init__(self) -> None:
        s = self.settings
        self.numbers = JobNumbers(len(self.searches), self.state.schedule(s.schedule), s.final_top, s.final_seeds)
        self.schedule = self.numbers.schedule
        self.outcomes = [Outcomes(p) for p in self.searches]
        self.crossed = len(self.searches) > 1
        self.deadline: float | None = None

    # --- the sweep ------------------------------------------------------------------------

    def run(self, space: SearchSpace) -> dict[str, Any]:
        """Run every search and report; returns the summary. On too many failures the results
        so far are written, the runs end FAILED and :class:`TooManyFailures` propagates."""
        if self.settings.timeout_s is not None:
            self.deadline = time.monotonic() + self.settings.timeout_s
        self.state.status = "running"
        self.state.save(self.sweep_dir.state)  # resumable from here on, even if MLflow fails next
        self.lineage.start(self.searches, space, self.settings,
                           {"parent_run_id": self.state.parent_run_id, "combo_run_ids": self.state.combo_run_ids}
                           if self.state.resumed else None)
        self.state.parent_run_id = self.lineage.parent_run_id
        if len(self.numbers.segments) > 1:  # extended: the parent's params keep the first n_trials
            self.lineage.tag(None, {"n_trials": self.schedule.total})
        self.state.combo_run_ids = self.lineage.search_run_ids()
        self.state.save(self.sweep_dir.state)
        try:
            for out in self.outcomes:
                if self.stopped:
                    log.warning(f"[{out.search.label}] not started: {self.stopped}")
                    continue
                self._run_search(out)
        except TooManyFailures as exc:
            self.finish()
            self.lineage.end("FAILED", str(exc))
            self._save_status("failed")
            raise
        except BaseException as exc:
            killed = isinstance(exc, (KeyboardInterrupt, InfrastructureDown)) or infrastructure(exc)
            try:
                self._save_status("interrupted" if killed else "failed")
            except OSError as full:  # the disk may be what failed: the state says "running", also resumable
                log.warning(f"the sweep's state could not be saved: {type(full).__name__}: {full}")
            try:
                self.lineage.end("KILLED" if killed else "FAILED", f"{type(exc).__name__}: {exc}"[:5000])
            except Exception as down:  # the store may be what failed
                log.warning(f"the sweep's MLflow runs could not be closed: {type(down).__name__}: {down}")
            raise
        summary = self.finish()
        self.lineage.end("FINISHED")
        self._save_status("stopped" if self.stopped else "finished")
        if self.stopped:
            log.warning(f"Stopped early ({self.stopped}); the results above are of the trials that ran. "
                        f"Continue with: {self.state.resume_command}")
        return summary

    @property
    def stopped(self) -> str | None:
        """Why the sweep stopped before its budget was spent (the time budget), if it did."""
        return next((o.result.stopped for o in self.outcomes if o.result and o.result.stopped), None)

    def _save_status(self, status: str) -> None:
        self.state.status = status
        self.state.save(self.sweep_dir.state)

    # --- one search -----------------------------------------------------------------------

    def _run_search(self, out: Outcomes) -> None:
        s, p = self.settings, out.search
        log.info(f"[{p.label}] {s.describe_plan(self.schedule)}, {p.sampler!r}{proposes(p.sampler, self.batch_size)}")
        try:
            out.result = search(p.space, p.sampler,
                                lambda r, proposals, space, first=0, **rung: self._round(p, r, proposals, space,
                                                                                          first, **rung),
                                schedule=self.schedule, objective=s.objective, batch=self.batch_size,
                                policy=s.policy, max_failure_rate=s.max_failure_rate, stream=(p.index,),
                                on_round=lambda record: self._after_round(out, record))
        finally:
            if self.crossed and out.best is not None:
                self.lineage.tag(p, {"best_value": out.best.value})
        if out.result is not None and out.result.stopped:
            log.warning(f"[{p.label}] stopped after {len(out.result.trials)} trials: {out.result.stopped}")
        elif s.final_seeds and out.best is not None:
            self._seed_reruns(out)
        self._write_search(out)

    @property
    def batch_size(self) -> int | None:
        """Trials an adaptive sampler proposes at once: ``hydra.sweeper.batch_size``, else as many
        as the launcher runs at once (1 for Hydra's basic launcher), else the whole round."""
        return self.settings.batch_size or getattr(self.launcher, "parallelism", None)

    def _round(self, p: Search, r: int, proposals: Sequence[Mapping[str, Any]], space: SearchSpace,
               first: int = 0, fidelity: float | None = None, continues: Sequence[Trial | None] = ()) -> list[Outcome]:
        """Launch a round's trials (or the batch of them from index ``first``); trials that
        finished before an interruption are read back. In a fidelity sweep each trial gets the
        round's ``fidelity`` and, to keep its checkpoint in, the job directory of its first trial
        (``continues``: the trial it is promoted from, ``None`` for a new one)."""
        if first == 0:
            write_space(p.directory.zoom_file(r), space, header=f"space sampled in round {r} of {self.sweep_dir.root}")
        finished = self.lineage.finished(p) if self.settings.resume else {}
        outcomes: dict[int, Outcome] = {}
        jobs: list[tuple[int, Job]] = []
        job_dirs = []
        for i, params in enumerate(proposals, start=first):
            origin = continues[i - first] if continues else None
            number, name, tags = self._trial_ids(p, r, i, origin.first if origin else None)
            subdir = self.sweep_dir.job_subdir(number, p.index, self.crossed)
            job_dirs.append(self.sweep_dir.job_dir(subdir))
            done = finished_outcome(job_dirs[-1], finished.get(number))
            if done is not None:
                outcomes[i - first] = done
                continue
            overrides = p.overrides(dict(params)) + self.lineage.trial_overrides(p, name, number, tags)
            if fidelity is not None:
                home = self._job_dir(p, *origin.first) if origin else job_dirs[-1]
                overrides += self._fidelity_overrides(fidelity, home)
            jobs.append((i - first, Job(number, subdir, tuple(overrides), name, tags)))
        if first == 0 and self.settings.resume:  # said once per round, also when it runs in batches
            size = self.schedule.sizes[r - 1]
            done = sum(finished_outcome(self._job_dir(p, r, i), finished.get(self.numbers.trial(p.index, r, i)))
                       is not None for i in range(size))
            if done:
                log.info(f"[{p.label}] round {r}: {done} trials already finished, {size - done} to run")
        costs = [self._cost(r, fidelity, bool(continues and continues[i])) for i in range(len(proposals))] \
            if fidelity is not None else []
        self.progress.watch(p.label, r, job_dirs, proposals, costs)
        stopped = None
        try:
            launched = self._launch([j for _, j in jobs])
        except TimeUp as up:
            launched, stopped = up.outcomes, str(up)
        for (i, job), outcome in zip(jobs, launched, strict=False):
            outcomes[i] = outcome
            if outcome.value is None:
                # counted in the progress; a line of its own off a terminal or when verbose
                log.info(f"[{p.label}] trial {job.name} failed: {outcome.error}")
        self.progress.finish_round()
        if stopped is not None:
            raise StopSearch(stopped, outcomes)
        return [outcomes[i] for i in range(len(proposals))]

    def _cost(self, r: int, fidelity: float, continued: bool) -> float:
        """The fidelity a trial of round ``r`` spends: what it adds to its checkpoint, else all."""
        below = self.schedule.fidelity(r - 1) if r > 1 else None
        return fidelity - below if continued and below is not None and self.settings.fidelity.resume_key \
            else fidelity

    def _fidelity_overrides(self, fidelity: float, home: Path | None) -> list[str]:
        """The fidelity key's value and, when the task takes one, where it keeps its checkpoint
        (``home``: the trial's first job directory; every rung of the trial continues there)."""
        f = self.settings.fidelity
        out = [f"{f.key}={fidelity if isinstance(fidelity, int) else repr(float(fidelity))}"]
        if f.resume_key and home is not None:
            out.append(f"{f.resume_key}={quote(str(home.resolve()))}")
        return out

    def _job_dir(self, p: Search, r: int, i: int) -> Path:
        number = self.numbers.trial(p.index, r, i)
        return self.sweep_dir.job_dir(self.sweep_dir.job_subdir(number, p.index, self.crossed))

    def _trial_ids(self, p: Search, r: int, i: int, origin: tuple[int, int] | None = None
                   ) -> tuple[int, str, dict[str, str]]:
        """Trial ``i`` of round ``r``: its job number, MLflow run name and run tags (in a fidelity
        sweep ``rung``, and ``trial``: the configuration's first trial, whose run it extends)."""
        tags = {"round": str(r), "sampler": p.sampler_name}
        if self.schedule.fidelities:
            tags["rung"] = str(r)
            tags["trial"] = trial_name(p.index, self.crossed, *(origin or (r, i)))
        return self.numbers.trial(p.index, r, i), trial_name(p.index, self.crossed, r, i), tags

    def _launch(self, jobs: Sequence[Job]) -> list[Outcome]:
        """Launch ``jobs``; those that failed for the infrastructure's sake (the tracking store
        down or locked, the job directory in use by another live process: ``Outcome.retry``)
        again after each of ``RETRY_WAITS`` seconds, then
        :class:`InfrastructureDown` (the sweep stops, resumable; nothing recorded as failed)."""
        outcomes = self._launch_once(jobs)
        for wait in (*RETRY_WAITS, None):
            again = [i for i, o in enumerate(outcomes) if o.retry]
            if not again:
                return outcomes
            reason = outcomes[again[0]].error
            if wait is None:
                raise InfrastructureDown(f"{len(again)} trial(s) still failing after {len(RETRY_WAITS)} retries for "
                                         f"a reason that is not theirs: {reason}")
            log.warning(f"{len(again)} trial(s) could not run, not for a fault of theirs ({reason}); again in "
                        f"{wait:g} s")
            time.sleep(wait)
            for i, outcome in zip(again, self._launch_once([jobs[i] for i in again]), strict=False):
                outcomes[i] = outcome
        return outcomes

    def _launch_once(self, jobs: Sequence[Job]) -> list[Outcome]:
        """Launch ``jobs``; with ``timeout_s``, in slices as wide as the launcher runs at once, none
        started after the deadline (:class:`TimeUp` carries the outcomes so far)."""
        if self.deadline is None or not jobs:
            return self.launcher.launch(jobs)
        width = max(1, getattr(self.launcher, "parallelism", None) or len(jobs))
        outcomes: list[Outcome] = []
        for start in range(0, len(jobs), width):
            if time.monotonic() >= self.deadline:
                raise TimeUp(f"timeout_s={self.settings.timeout_s} s reached", outcomes)
            outcomes += self.launcher.launch(jobs[start:start + width])
        return outcomes

    def _after_round(self, out: Outcomes, record: Round) -> None:
        """Write the next round's space, the results so far and the state; log the round once."""
        p, s = out.search, self.settings
        write_space(p.directory.zoom_file(record.round + 1), record.next_space,
                    header=f"zoomed after round {record.round} of {self.sweep_dir.root}")
        best = record.best
        shown = f"{s.objective.metric or 'objective'}={best.value:.4g}" if best is not None else "none"
        log.info(f"[{p.label}] round {record.round}/{self.schedule.rounds} done: {len(record.trials)} trials, "
                 f"{record.failed} failed; best so far {shown}")
        for note in record.notes:
            log.warning(f"[{p.label}] {note}")
        self.lineage.log_trials(p, [(*self._trial_ids(p, t.round, t.index, t.origin), t) for t in record.trials])
        logged = self.state.logged(p.index)
        if record.round > logged:  # a resumed round is logged once
            metrics = {"best_value": best.value} if best is not None else {}
            self.lineage.log_metrics(p, {**metrics, "failed_trials": record.failed, **_bounds(record.space)},
                                     step=record.round)
            self.lineage.log_files(p, [p.directory.zoom_file(record.round)], "zoom")
        out.result = SearchResult([*(out.result.rounds if out.result else []), record], s.objective)
        p.directory.write_results(search_results(out, s, self.reproduce))
        p.directory.write_trials(out.result.trials)
        self.state.rounds_logged[str(p.index)] = max(logged, record.round)
        self.state.save(self.sweep_dir.state)

    def _seed_reruns(self, out: Outcomes) -> None:
        """Re-run the ``final_top`` best configurations with ``final_seeds`` other seeds: their
        seed-to-seed spread is the noise floor below which a difference means nothing."""
        s, p = self.settings, out.search
        assert out.result is not None and p.base_seed is not None
        ranked = s.objective.top(one_fidelity(out.result.trials), s.final_top)  # values of one fidelity
        tags = {"round": "final"}
        slots = [(k, seed) for k in range(len(ranked)) for seed in range(1, s.final_seeds + 1)]
        numbers = {slot: self.numbers.seed_rerun(p.index, *slot) for slot in slots}
        names = {(k, seed): f"final-t{k}-s{seed}" for k, seed in slots}
        outcomes: dict[tuple[int, int], Outcome] = {}
        jobs: list[tuple[tuple[int, int], Job]] = []
        for k, seed in slots:
            subdir = self.sweep_dir.job_subdir(numbers[k, seed], p.index, self.crossed, final=True)
            done = finished_outcome(self.sweep_dir.job_dir(subdir))
            if done is not None:
                outcomes[k, seed] = done
                continue
            overrides = [*p.overrides(dict(ranked[k].params)), f"{s.seed_key}={p.base_seed + seed}"]
            if s.fidelity.on:  # trained in one go at the full fidelity, checkpointed in its own directory
                overrides += self._fidelity_overrides(self.schedule.fidelities[-1], self.sweep_dir.job_dir(subdir))
            overrides += self.lineage.trial_overrides(p, names[k, seed], numbers[k, seed], tags)
            jobs.append(((k, seed), Job(numbers[k, seed], subdir, tuple(overrides), names[k, seed], tags)))
        log.info(f"[{p.label}] noise floor: {len(ranked)} best configurations x {s.final_seeds} more seeds")
        try:
            launched = self._launch([j for _, j in jobs])
        except TimeUp as up:
            launched = up.outcomes
            log.warning(f"[{p.label}] seed re-runs cut short: {up}")
        for (slot, _), outcome in zip(jobs, launched, strict=False):
            outcomes[slot] = outcome
        slots = [slot for slot in slots if slot in outcomes]  # a timeout may have cut some
        # round 0: a re-run, not a round of the search; its params name the seed it ran with
        self.lineage.log_trials(p, [(numbers[k, seed], names[k, seed], tags, Trial.from_outcome(
            0, k, {**ranked[k].params, s.seed_key: p.base_seed + seed}, outcomes[k, seed])) for k, seed in slots])
        reruns = {k: [outcomes[slot].value for slot in slots if slot[0] == k and outcomes[slot].value is not None]
                  for k in range(len(ranked))}
        out.noise = noise_floor(ranked, reruns, s.final_seeds)
        if out.noise["std"] is not None:
            self.lineage.log_metrics(p, {"seed_noise_std": out.noise["std"]}, step=self.schedule.rounds)

    def _write_search(self, out: Outcomes) -> None:
        s, p = self.settings, out.search
        assert out.result is not None
        p.directory.write_results(search_results(out, s, self.reproduce))
        best = out.best
        if best is not None and best.job_dir:
            write_best_config(Path(best.job_dir), p.directory.best)
        self.lineage.log_files(p, [p.directory.results, p.directory.best])
        if s.importance:
            analysis.importance(out, s.objective.metric, self.schedule.rounds, self.lineage)
        if s.plots:
            analysis.plots(out, s.objective.metric, self.lineage)

    # --- the end --------------------------------------------------------------------------

    def finish(self) -> dict[str, Any]:
        """Write the sweep's own result files and print the report; returns the summary (each
        search's results were written as it went, the last time in :meth:`_write_search`)."""
        s = self.settings
        done = [o for o in self.outcomes if o.result is not None and o.result.rounds]
        ranked = ranked_searches(done, s.objective)
        if self.crossed:
            summary = crossed_summary(self.outcomes, s, self.reproduce)
            write_yaml_atomic(self.sweep_dir.results, summary)
            top = ranked[0] if ranked else None
            if top is not None and top.search.directory.best.exists():
                write_best_config(Path(top.best.job_dir), self.sweep_dir.best)
            self.lineage.log_files(None, [self.sweep_dir.results])
            if top is not None:
                self.lineage.log_metrics(None, {"best_value": top.best.value}, step=self.schedule.rounds)
                self.lineage.tag(None, {"best_combination": top.search.label})
        else:
            summary = search_results(self.outcomes[0], s, self.reproduce) if done else {}
        if ranked and ranked[0].best.run_id:
            self.lineage.tag(None, {"best_run_id": ranked[0].best.run_id})
            self.lineage.inherit_inputs(ranked[0].best.run_id)
        board = leaderboard(leaderboard_trials(self.outcomes), s.objective.direction.value)
        write_csv(self.sweep_dir.leaderboard, board)
        if not ranked:
            print("No trial succeeded.", file=sys.stderr)
            return summary
        top = ranked[0]
        model = self._export(top.best)
        self.progress.close()  # the final status stays above the report
        print(final_report(ranked, summary, board, metric=s.objective.metric,
                           direction=s.objective.direction.value, results_path=self.sweep_dir.results,
                           leaderboard_path=self.sweep_dir.leaderboard,
                           reproduce=self.reproduce(top.search.reproduce(top.best)),
                           ui_hint=self.lineage.ui_hint(),
                           width=shutil.get_terminal_size().columns if sys.stdout.isatty() else None,
                           model=model), flush=True)
        return summary

    def _export(self, best: Trial) -> str | None:
        """The line the report gives about the best trial's model: logged by the app's export
        hook on the sweep's run (and registered), or why not. ``None`` without MLflow."""
        s = self.settings
        if not s.tracking.on:
            return None
        if not s.export:
            return "Model: not logged (this app sets no hydra.sweeper.export hook to log the best trial's model)"
        if not best.job_dir:
            return "Model: not logged (the best trial has no job directory)"
        try:
            uri = self.lineage.export(resolve_callable(s.export, "hydra.sweeper.export"), Path(best.job_dir))
        except Exception as exc:  # the results stand without it
            log.warning(f"the best trial's model was not logged: {s.export}: {type(exc).__name__}: {exc}")
            return f"Model: not logged ({type(exc).__name__}: {exc})"
        if not uri:
            return f"Model: {s.export} logged nothing"
        line = f"Model: {uri} (the best trial's, logged on the sweep's MLflow run)"
        if s.register_model:
            try:
                line += f"\nRegistered: models:/{s.register_model}/{self.lineage.register(s.register_model)}"
            except Exception as exc:
                log.warning(f"the model was not registered as {s.register_model}: {type(exc).__name__}: {exc}")
        return line


def _bounds(space: SearchSpace) -> dict[str, float]:
    """Interval bounds as metrics (``zoom/optimizer.lr/low``), so the narrowing is a chart."""
    out = {}
    for dim in space.dims:
        if isinstance(dim, Interval):
            out[f"zoom/{dim.key}/low"] = float(dim.low)
            out[f"zoom/{dim.key}/high"] = float(dim.high)
    return out


__all__ = ["NoProgress", "SweepRunner"]
