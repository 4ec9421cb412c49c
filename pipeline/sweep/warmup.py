"""Warm a process pool's workers before the first trial reaches them.

A fresh worker of a process-pool launcher (Hydra's joblib launcher runs loky processes) pays
~2.5 s at its first trial: importing MLflow and its SQLAlchemy store (~1.8 s), the training
stage and the numba kernels. :class:`PoolWarmup` starts the pool and those imports in the
background while the sweeping process composes the plan and opens the store, so the two
overlap instead of following each other; the pool is the one the launcher then reuses (loky
keeps one executor per process and reuses it while its settings are unchanged). What to import
and how the launcher builds its pool are the launcher's business
(hydra_plugins/zoom_sweeper/_warmup.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class PoolWarmup:
    """Start a joblib (loky) pool's workers with ``parallel_kwargs()`` (``None``: not a pool
    launcher: nothing to do) and run ``warm`` in each, in a background thread; :meth:`wait`
    before the first launch (two ``Parallel`` calls never overlap). ``warm`` returns the worker's
    pid and the seconds it took.

    A failure here is logged and never fails the sweep: the first trials then pay the imports
    as they would have anyway.
    """

    def __init__(self, parallel_kwargs: Callable[[], dict[str, Any]] | None,
                 warm: Callable[[], tuple[int, float]]) -> None:
        self.thread: threading.Thread | None = None
        self.warmed: dict[int, float] = {}  # worker pid -> seconds its imports took
        if parallel_kwargs is None:
            return
        self.parallel_kwargs, self.warm = parallel_kwargs, warm
        self.thread = threading.Thread(target=self._run, name="joblib-warmup", daemon=True)

    def start(self) -> PoolWarmup:
        if self.thread is not None:
            self.thread.start()
        return self

    def _run(self) -> None:
        try:
            from joblib import Parallel, delayed, effective_n_jobs

            kwargs = self.parallel_kwargs()
            workers = effective_n_jobs(kwargs.get("n_jobs"))
            self.warmed = dict(Parallel(**kwargs)(delayed(self.warm)() for _ in range(workers)))
        except Exception as exc:  # never fail a sweep over a warm-up
            log.debug(f"joblib warm-up skipped: {type(exc).__name__}: {exc}")

    def wait(self) -> None:
        if self.thread is not None and self.thread.ident is not None:
            self.thread.join()
            self.thread = None
            if self.warmed:
                log.debug(f"{len(self.warmed)} joblib workers warmed in {max(self.warmed.values()):.2f} s")

    def cancel(self) -> None:
        """Stop the warmed workers now (the sweep ends before launching anything): otherwise the
        interpreter's exit waits for their imports, ~2 s after a config error was printed."""
        if self.thread is None or self.thread.ident is None:
            return
        try:  # loky's process-wide executor; no public handle reaches it without making a new one
            from joblib.externals.loky import reusable_executor

            executor = reusable_executor._executor
            if executor is not None:
                executor.shutdown(wait=False, kill_workers=True)
        except Exception as exc:
            log.debug(f"joblib warm-up not cancelled: {type(exc).__name__}: {exc}")
        self.thread.join()
        self.thread = None
