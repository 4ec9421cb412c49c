"""Drives a planned sweep: for each search the rounds (pipeline.search.rounds) with its trials as
jobs (pipeline.sweep.trials), then the seed re-runs of the best configurations (reruns), then the
analysis; the sweep's own result files and report at the end. Hydra-free: jobs go to a
:class:`pipeline.sweep.jobs.Launcher`, records to a :class:`pipeline.sweep.lineage.Lineage`."""

from __future__ import annotations

import logging
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.atomic import write_yaml_atomic
from pipeline.errors import InfrastructureDown, infrastructure
from pipeline.registry import resolve_callable
from pipeline.search.rounds import TooManyFailures, search
from pipeline.search.space import SearchSpace
from pipeline.search.trial import Trial
from pipeline.sweep.analysis import steps as analysis
from pipeline.sweep.files import SweepDir, write_best_config
from pipeline.sweep.jobs import JobNumbers, JobRecipe, Launcher
from pipeline.sweep.launching import Launching
from pipeline.sweep.lineage import Lineage, NullLineage, RunIds
from pipeline.sweep.plan import Search, proposes
from pipeline.sweep.report import final_report, leaderboard, write_csv
from pipeline.sweep.reruns import seed_reruns
from pipeline.sweep.settings import SweepSettings
from pipeline.sweep.state import SweepState
from pipeline.sweep.summary import (
    Outcomes,
    Reproduce,
    crossed_summary,
    leaderboard_trials,
    ranked_searches,
    search_results,
)
from pipeline.sweep.trials import NoProgress, Progress, TrialJobs

log = logging.getLogger("pipeline.sweep")


@dataclass
class SweepRunner:
    settings: SweepSettings
    searches: list[Search]
    launcher: Launcher
    sweep_dir: SweepDir
    state: SweepState
    reproduce: Reproduce
    lineage: Lineage = field(default_factory=NullLineage)
    progress: Progress = field(default_factory=NoProgress)

    def __post_init__(self) -> None:
        s = self.settings
        self.numbers = JobNumbers(len(self.searches), self.state.schedule(s.schedule), s.final_top, s.final_seeds)
        self.schedule = self.numbers.schedule
        self.outcomes = [Outcomes(p) for p in self.searches]
        self.crossed = len(self.searches) > 1
        self.recipe = JobRecipe(self.sweep_dir, self.crossed, s.fidelity, self.lineage)
        self.launching = Launching(self.launcher, timeout_s=s.timeout_s)

    # --- the sweep ------------------------------------------------------------------------

    def run(self, space: SearchSpace) -> dict[str, Any]:
        """Run every search and report; returns the summary. On too many failures the results
        so far are written, the runs end FAILED and :class:`TooManyFailures` propagates."""
        if self.settings.timeout_s is not None:
            self.launching.deadline = time.monotonic() + self.settings.timeout_s
        self._save_status("running")  # resumable from here on, even if MLflow fails next
        resumed = RunIds(self.state.parent_run_id, self.state.combo_run_ids) if self.state.resumed else None
        ids = self.lineage.start(self.searches, space, self.settings, resumed)
        if len(self.numbers.segments) > 1:  # extended: the parent's params keep the first n_trials
            self.lineage.record(None, tags={"n_trials": self.schedule.total})
        self.state.parent_run_id, self.state.combo_run_ids = ids.parent, dict(ids.searches)
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
            self._record_fault(exc)
            raise
        summary = self.finish()
        self.lineage.end("FINISHED")
        self._save_status("stopped" if self.stopped else "finished")
        if self.stopped:
            log.warning(f"Stopped early ({self.stopped}); the results above are of the trials that ran. "
                        f"Continue with: {self.state.resume_command}")
        return summary

    def _record_fault(self, exc: BaseException) -> None:
        """The state and the MLflow runs say how the sweep ended: interrupted (Ctrl-C, SIGTERM, the
        infrastructure down: resumable) or failed; either record may itself be what fails."""
        killed = isinstance(exc, (KeyboardInterrupt, InfrastructureDown)) or infrastructure(exc)
        try:
            self._save_status("interrupted" if killed else "failed")
        except OSError as full:  # the disk may be what failed: the state says "running", also resumable
            log.warning(f"the sweep's state could not be saved: {type(full).__name__}: {full}")
        try:
            self.lineage.end("KILLED" if killed else "FAILED", f"{type(exc).__name__}: {exc}"[:5000])
        except Exception as down:  # the store may be what failed
            log.warning(f"the sweep's MLflow runs could not be closed: {type(down).__name__}: {down}")

    @property
    def stopped(self) -> str | None:
        """Why the sweep stopped before its budget was spent (the time budget), if it did."""
        return next((o.result.stopped for o in self.outcomes if o.result and o.result.stopped), None)

    def _save_status(self, status: str) -> None:
        self.state.status = status
        self.state.save(self.sweep_dir.state)

    @property
    def batch_size(self) -> int | None:
        """Trials an adaptive sampler proposes at once: ``hydra.sweeper.batch_size``, else as many
        as the launcher runs at once (1 for Hydra's basic launcher), else the whole round."""
        return self.settings.batch_size or self.launcher.parallelism

    # --- one search -----------------------------------------------------------------------

    def _run_search(self, out: Outcomes) -> None:
        s, p = self.settings, out.search
        log.info(f"[{p.label}] {s.describe_plan(self.schedule)}, {p.sampler!r}{proposes(p.sampler, self.batch_size)}")
        jobs = TrialJobs(out, s, self.schedule, self.numbers, self.recipe, self.launching, self.lineage, self.state,
                         self.sweep_dir, self.reproduce, lambda: self.progress)
        try:
            out.result = search(p.space, p.sampler, jobs.evaluate, schedule=self.schedule, objective=s.objective,
                                batch=self.batch_size, policy=s.policy, max_failure_rate=s.max_failure_rate,
                                stream=(p.index,), on_round=jobs.after_round)
        finally:
            if self.crossed and out.best is not None:
                self.lineage.record(p, tags={"best_value": out.best.value})
        if out.result is not None and out.result.stopped:
            log.warning(f"[{p.label}] stopped after {len(out.result.trials)} trials: {out.result.stopped}")
        elif s.final_seeds and out.best is not None:
            seed_reruns(jobs)
        self._write_search(out)

    def _write_search(self, out: Outcomes) -> None:
        s, p = self.settings, out.search
        assert out.result is not None
        p.directory.write_results(search_results(out, s, self.reproduce))
        best = out.best
        if best is not None and best.job_dir:
            write_best_config(Path(best.job_dir), p.directory.best)
        self.lineage.record(p, files=[p.directory.results, p.directory.best])
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
        summary = self._crossed_results(ranked) if self.crossed else \
            search_results(self.outcomes[0], s, self.reproduce) if done else {}
        board = leaderboard(leaderboard_trials(self.outcomes), s.objective.direction.value)
        write_csv(self.sweep_dir.leaderboard, board)
        if not ranked:
            print("No trial succeeded.", file=sys.stderr)
            return summary
        top = ranked[0]
        model = self._model_line(top.best)
        self.progress.close()  # the final status stays above the report
        print(final_report(ranked, summary, board, metric=s.objective.metric,
                           direction=s.objective.direction.value, results_path=self.sweep_dir.results,
                           leaderboard_path=self.sweep_dir.leaderboard,
                           reproduce=self.reproduce(top.search.reproduce(top.best)),
                           ui_hint=self.lineage.ui_hint(),
                           width=shutil.get_terminal_size().columns if sys.stdout.isatty() else None,
                           model=model), flush=True)
        return summary

    def _crossed_results(self, ranked: list[Outcomes]) -> dict[str, Any]:
        """The summary over the crossed combinations, in the sweep directory and on its run."""
        summary = crossed_summary(self.outcomes, self.settings, self.reproduce)
        write_yaml_atomic(self.sweep_dir.results, summary)
        top = ranked[0] if ranked else None
        if top is not None and top.search.directory.best.exists():
            write_best_config(Path(top.best.job_dir), self.sweep_dir.best)
        self.lineage.record(None, files=[self.sweep_dir.results])
        if top is not None:
            self.lineage.record(None, metrics={"best_value": top.best.value}, step=self.schedule.rounds,
                                tags={"best_combination": top.search.label})
        return summary

    def _model_line(self, best: Trial) -> str | None:
        """The line the report gives about the best trial's model: logged by the app's export
        hook on the sweep's run (and registered), or why not. ``None`` without MLflow."""
        s = self.settings
        if not s.tracking.on:
            return None
        hook = resolve_callable(s.export, "hydra.sweeper.export") if s.export and best.job_dir else None
        model = self.lineage.publish(best, hook, s.register_model)
        if not s.export:
            return "Model: not logged (this app sets no hydra.sweeper.export hook to log the best trial's model)"
        if not best.job_dir:
            return "Model: not logged (the best trial has no job directory)"
        if model.problem:
            log.warning(f"the best trial's model was not logged: {s.export}: {model.problem}")
            return f"Model: not logged ({model.problem})"
        if not model.uri:
            return f"Model: {s.export} logged nothing"
        line = f"Model: {model.uri} (the best trial's, logged on the sweep's MLflow run)"
        if model.registration_problem:
            log.warning(f"the model was not registered as {s.register_model}: {model.registration_problem}")
        elif model.version:
            line += f"\nRegistered: models:/{s.register_model}/{model.version}"
        return line


__all__ = ["NoProgress", "SweepRunner"]
