"""The recording task: wraps the app's task function so each job leaves ``result.json`` in its
directory, which resume and the live progress read, and, unless the sweep is verbose, writes what
the job prints to the log file in that directory instead of the terminal
(pipeline.sweep.processes.run_recorded; here only what Hydra knows of the job)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.sweep.processes import run_recorded


class RecordingTask:
    """Wraps a Hydra task function: after the job, ``result.json`` in its output directory says
    whether it finished, its return value and its error, or that it was interrupted (Ctrl-C,
    SIGTERM: not a result, so resume runs the trial again). Picklable for process launchers."""

    def __init__(self, task_function: Callable[[Any], Any]) -> None:
        self.task_function = task_function
        self.sweep = (socket.gethostname(), os.getpid())  # the sweeping process
        self.capture_output = False  # set by the sweeper (not hydra.sweeper.verbose)

    def __call__(self, cfg: Any) -> Any:
        from hydra.core.hydra_config import HydraConfig

        hydra = HydraConfig.get()
        out = Path(hydra.runtime.output_dir)
        return run_recorded(self.task_function, cfg, job_dir=out, overrides=list(hydra.overrides.task),
                            sweep=self.sweep, log_file=out / f"{hydra.job.name}.log" if self.capture_output else None)
