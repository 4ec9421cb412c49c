"""Jobs to a launcher, with what a sweep adds: trials the infrastructure failed (the tracking
store down or locked, a job directory held by another live process) launched again after a
wait, and no trial started after the sweep's time budget."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.errors import InfrastructureDown
from pipeline.search.trial import Outcome
from pipeline.sweep.jobs import Job, Launcher

log = logging.getLogger("pipeline.sweep")
RETRY_WAITS = (5.0, 15.0, 45.0)  # seconds before each relaunch of trials the infrastructure failed


class TimeUp(Exception):
    """The sweep's ``timeout_s`` passed: no further trial starts; ``outcomes`` finished before."""

    def __init__(self, reason: str, outcomes: list[Outcome]) -> None:
        super().__init__(reason)
        self.outcomes = outcomes


@dataclass
class Launching:
    """``launcher`` with retries and the deadline (``time.monotonic()``; ``None``: no limit)."""

    launcher: Launcher
    deadline: float | None = None
    timeout_s: float | None = None  # what the deadline came from, for the message

    def launch(self, jobs: Sequence[Job]) -> list[Outcome]:
        """Launch ``jobs``; those that failed for the infrastructure's sake (``Outcome.retry``)
        again after each of ``RETRY_WAITS`` seconds, then :class:`InfrastructureDown` (the sweep
        stops, resumable; nothing recorded as failed)."""
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
        """Launch ``jobs``; with a deadline, in slices as wide as the launcher runs at once, none
        started after it (:class:`TimeUp` carries the outcomes so far)."""
        if self.deadline is None or not jobs:
            return self.launcher.launch(jobs)
        width = max(1, self.launcher.parallelism or len(jobs))
        outcomes: list[Outcome] = []
        for start in range(0, len(jobs), width):
            if time.monotonic() >= self.deadline:
                raise TimeUp(f"timeout_s={self.timeout_s} s reached", outcomes)
            outcomes += self.launcher.launch(jobs[start:start + width])
        return outcomes
