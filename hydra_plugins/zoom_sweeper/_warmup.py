"""Warm worker processes before the first trial reaches them.

A fresh worker of a process-pool launcher (Hydra's joblib launcher runs loky processes) pays
~2.5 s at its first trial: importing MLflow and its SQLAlchemy store (~1.8 s), the training
stage and the numba kernels. :class:`JoblibWarmup` starts the pool and those imports in the
background while the sweeping process composes the plan and opens the store, so the two
overlap instead of following each other; the pool is the one the launcher then reuses (loky
keeps one executor per process and reuses it while its settings are unchanged).
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

JOBLIB_LAUNCHER = "hydra_plugins.hydra_joblib_launcher.joblib_launcher"


def warm_imports(tracking: bool) -> tuple[int, float]:
    """Import what a trial needs (MLflow and its SQL store when ``tracking``, the training stage,
    Hydra's job runner, the numba kernels); returns this process's id and the seconds spent.

    Then ``gc.freeze()``: the ~370k objects those imports create live as long as the process,
    and a full collection walking them costs ~0.2 s (loky runs one after each task when psutil
    is missing). Frozen objects are skipped by every later collection.
    """
    start = time.perf_counter()
    import hydra.core.utils  # noqa: F401 - run_job, what every job calls first

    from hydra_plugins.zoom_sweeper._task import interrupt_only_in_tasks

    interrupt_only_in_tasks()  # an idle worker outlives a Ctrl-C (the sweep's records need it)

    import pipeline.train.stage  # noqa: F401
    from pipeline.train import kernels
    kernels.compiled()
    if tracking:
        import mlflow  # noqa: F401
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401 - ~0.8 s on its own
    gc.collect()
    gc.freeze()
    return os.getpid(), time.perf_counter() - start


class JoblibWarmup:
    """Start the joblib launcher's workers and :func:`warm_imports` in them, in a background
    thread; :meth:`wait` before the first launch (two ``Parallel`` calls never overlap).

    Does nothing for any other launcher. A failure here is logged and never fails the sweep:
    the first trials then pay the imports as they would have anyway.
    """

    def __init__(self, launcher: Any, tracking: bool) -> None:
        self.thread: threading.Thread | None = None
        self.warmed: dict[int, float] = {}  # worker pid -> seconds its imports took
        cfg = getattr(launcher, "joblib", None)
        if type(launcher).__module__ != JOBLIB_LAUNCHER or not isinstance(cfg, Mapping):
            return
        self.cfg = cfg
        self.tracking = tracking
        self.thread = threading.Thread(target=self._run, name="joblib-warmup", daemon=True)

    def start(self) -> JoblibWarmup:
        if self.thread is not None:
            self.thread.start()
        return self

    def _run(self) -> None:
        try:
            from joblib import Parallel, delayed, effective_n_jobs

            kwargs = _parallel_kwargs(self.cfg)
            workers = effective_n_jobs(kwargs.get("n_jobs"))
            self.warmed = dict(Parallel(**kwargs)(delayed(warm_imports)(self.tracking) for _ in range(workers)))
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


def _parallel_kwargs(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``joblib.Parallel`` arguments exactly as Hydra's joblib launcher builds them (loky backend,
    its own conversion of numeric strings), so the warmed pool is the one the launcher reuses."""
    from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg

    kwargs = dict(cfg)
    kwargs["backend"] = "loky"
    process_joblib_cfg(kwargs)
    return kwargs
