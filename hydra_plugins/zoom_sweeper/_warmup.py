"""What a warm joblib worker has imported before its first trial, and the joblib launcher's pool
settings (the pool warm-up itself: pipeline.sweep.warmup)."""

from __future__ import annotations

import functools
import gc
import os
import time
from collections.abc import Mapping
from typing import Any

from pipeline.sweep.warmup import PoolWarmup

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

    from pipeline.sweep.processes import interrupt_only_in_tasks

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


class JoblibWarmup(PoolWarmup):
    """:class:`pipeline.sweep.warmup.PoolWarmup` of Hydra's joblib launcher (nothing for any other
    launcher), each worker running :func:`warm_imports`."""

    def __init__(self, launcher: Any, tracking: bool) -> None:
        cfg = getattr(launcher, "joblib", None)
        joblib = type(launcher).__module__ == JOBLIB_LAUNCHER and isinstance(cfg, Mapping)
        super().__init__((lambda: _parallel_kwargs(cfg)) if joblib else None, functools.partial(warm_imports, tracking))


def _parallel_kwargs(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``joblib.Parallel`` arguments exactly as Hydra's joblib launcher builds them (loky backend,
    its own conversion of numeric strings), so the warmed pool is the one the launcher reuses."""
    from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg

    kwargs = dict(cfg)
    kwargs["backend"] = "loky"
    process_joblib_cfg(kwargs)
    return kwargs
