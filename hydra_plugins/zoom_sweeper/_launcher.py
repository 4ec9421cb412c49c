"""Runs the sweep's jobs on Hydra's configured launcher (basic, joblib, Ray, SLURM ...) and turns
each ``JobReturn`` into an :class:`pipeline.search.trial.Outcome` (pipeline.sweep.jobs.Launcher)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus

from pipeline.errors import infrastructure
from pipeline.search.trial import Outcome
from pipeline.sweep.files import job_outcome
from pipeline.sweep.jobs import Job, consecutive


class HydraLauncher:
    def __init__(self, launcher: Any, warmup: Any = None) -> None:
        self.launcher = launcher
        self.warmup = warmup

    @property
    def parallelism(self) -> int | None:
        """Jobs the launcher runs at once: 1 for Hydra's basic launcher, ``n_jobs`` for joblib;
        ``None`` (unknown: Ray, SLURM) launches a whole round at once."""
        if type(self.launcher).__name__ == "BasicLauncher":
            return 1
        settings = getattr(self.launcher, "joblib", None)
        if settings is not None and settings.get("n_jobs") is not None:
            from joblib import effective_n_jobs

            return effective_n_jobs(int(settings["n_jobs"]))
        return None

    def launch(self, jobs: Sequence[Job]) -> list[Outcome]:
        if self.warmup is not None:  # its Parallel call and the launcher's never overlap
            self.warmup.wait()
        outcomes = []
        for chunk in consecutive(jobs):  # Hydra launchers number a call's jobs consecutively
            batch = [[*job.overrides, f"hydra.sweep.subdir={job.subdir}"] for job in chunk]
            outcomes += [outcome(ret) for ret in self.launcher.launch(batch, initial_job_idx=chunk[0].number)]
        return outcomes


def outcome(ret: JobReturn) -> Outcome:
    job_dir = None
    try:
        job_dir = Path(str(ret.hydra_cfg.hydra.runtime.output_dir))
    except Exception:  # a launcher that returns no hydra config
        pass

    def make(value: float | None, error: str | None) -> Outcome:
        return job_outcome(job_dir, value, error) if job_dir is not None else Outcome(value, error)

    if ret.status == JobStatus.COMPLETED:
        try:
            return make(float(ret.return_value), None)
        except (TypeError, ValueError):
            return make(None, f"return value is not a number: {ret.return_value!r}")
    exc = ret._return_value
    if infrastructure(exc):
        return replace(make(None, f"{type(exc).__name__}: {exc}"), retry=True)
    return make(None, f"{type(exc).__name__}: {exc}")
