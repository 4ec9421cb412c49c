"""The joblib warm-up: the pool it starts is the one Hydra's joblib launcher then runs jobs in,
and those workers already hold the trial's imports."""

from __future__ import annotations

import gc
import os
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("hydra_plugins.hydra_joblib_launcher")

from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher  # noqa: E402
from joblib import Parallel, delayed  # noqa: E402

from hydra_plugins.zoom_sweeper._warmup import JoblibWarmup, _parallel_kwargs, warm_imports  # noqa: E402


def _worker_state() -> tuple[int, int, bool]:
    return os.getpid(), gc.get_freeze_count(), "mlflow.store.tracking.sqlalchemy_store" in sys.modules


def test_launcher_reuses_the_warmed_workers() -> None:
    launcher = JoblibLauncher(n_jobs=2, backend=None, prefer="processes", require=None, verbose=0, timeout=None,
                              pre_dispatch="2*n_jobs", batch_size="auto", temp_folder=None, max_nbytes=None,
                              mmap_mode="r")
    warmup = JoblibWarmup(launcher, tracking=True).start()
    warmup.wait()
    assert len(warmup.warmed) == 2 and all(s > 0 for s in warmup.warmed.values())
    # what the launcher's own call does with the same settings (hydra_joblib_launcher._core.launch)
    states = Parallel(**_parallel_kwargs(launcher.joblib))(delayed(_worker_state)() for _ in range(6))
    assert {pid for pid, _, _ in states} <= set(warmup.warmed)
    assert all(frozen > 10_000 and store for _, frozen, store in states)


def test_other_launchers_and_failures_are_left_alone() -> None:
    class BasicLauncher:
        pass

    idle = JoblibWarmup(BasicLauncher(), tracking=True).start()
    assert idle.thread is None
    idle.wait()
    bad = JoblibLauncher(n_jobs=0)  # joblib refuses n_jobs=0: the sweep must not notice
    warmup = JoblibWarmup(bad, tracking=False).start()
    warmup.wait()
    assert warmup.warmed == {}


def test_parallel_kwargs_match_the_launcher() -> None:
    assert _parallel_kwargs({"n_jobs": 2, "pre_dispatch": "2*n_jobs", "batch_size": "4", "max_nbytes": None}) == {
        "n_jobs": 2, "pre_dispatch": "2*n_jobs", "batch_size": 4, "max_nbytes": None, "backend": "loky"}


def test_warm_imports_in_process() -> None:
    pid, seconds = warm_imports(tracking=False)
    try:
        assert pid == os.getpid() and seconds >= 0 and gc.get_freeze_count() > 0
        assert "pipeline.train.stage" in sys.modules
    finally:
        gc.unfreeze()


def _live_workers() -> set[int]:
    """Loky worker processes of this one that are not zombies (Linux /proc; loky's resource
    trackers are children too and outlive a pool by design)."""
    workers = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z" and b"LokyProcess" in cmdline:
            workers.add(int(stat.parent.name))
    return workers


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_cancel_stops_the_workers_and_the_pool_still_works() -> None:
    launcher = JoblibLauncher(n_jobs=2)
    warmup = JoblibWarmup(launcher, tracking=True).start()
    deadline = time.monotonic() + 30
    while len(_live_workers()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    started = _live_workers()  # new workers, or an earlier test's pool that the warm-up reused
    assert len(started) >= 2
    warmup.cancel()
    assert warmup.thread is None
    deadline = time.monotonic() + 10
    while _live_workers() & started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _live_workers() & started
    pids = Parallel(**_parallel_kwargs(launcher.joblib))(delayed(os.getpid)() for _ in range(2))
    assert not set(pids) & started
