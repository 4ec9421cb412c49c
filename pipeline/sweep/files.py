"""The sweep directory's contract: every file name a sweep reads or writes, where each lives,
and their (atomic) writers and readers. Layout::

    <sweep dir>/
      multirun.yaml               Hydra's config of the sweep, written once
      sweep_state.json            resume state (pipeline.sweep.state)
      optimization_results.yaml   the result (crossed: the summary over combinations)
      leaderboard.csv  best.yaml  every trial best first; the best trial's full config
      <job>/result.json           written by the recording task when a job ends
      <job>/.job.lock             "host pid" of the process running the job (removed when it ends)
      <job>/metrics.json          the task's final metrics, if it leaves them (optional)
      zoom/round_<r>.yaml  trials.yaml  importance.yaml  importance.png  plots/
                                  per search: in the sweep directory, or in combo_<i>/ when crossed
      final/<job>/                seed re-runs of the best configurations (combo_<i>/final/<job>/)
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline.atomic import read_json, write_json_atomic, write_text_atomic, write_yaml_atomic
from pipeline.errors import JobBusy
from pipeline.search.space import SearchSpace
from pipeline.search.trial import Outcome, Trial
from pipeline.search.zoom import space_text

RESULT_FILE = "result.json"
JOB_LOCK = ".job.lock"
METRICS_FILE = "metrics.json"
RESULTS_FILE = "optimization_results.yaml"
TRIALS_FILE = "trials.yaml"
STATE_FILE = "sweep_state.json"
LEADERBOARD_FILE = "leaderboard.csv"
BEST_FILE = "best.yaml"
MULTIRUN_FILE = "multirun.yaml"
IMPORTANCE_FILE = "importance.yaml"
IMPORTANCE_FIGURE = "importance.png"
ZOOM_DIR = "zoom"
PLOTS_DIR = "plots"
FINAL_DIR = "final"


@dataclass(frozen=True)
class SearchDir:
    """The folder of one search: the sweep directory, or ``combo_<i>/`` of a crossed sweep."""

    path: Path

    def zoom_file(self, r: int) -> Path:
        return self.path / ZOOM_DIR / f"round_{r}.yaml"

    @property
    def results(self) -> Path:
        return self.path / RESULTS_FILE

    @property
    def best(self) -> Path:
        return self.path / BEST_FILE

    @property
    def plots(self) -> Path:
        return self.path / PLOTS_DIR

    def write_results(self, results: dict[str, Any]) -> None:
        write_yaml_atomic(self.results, results)

    def write_trials(self, trials: Sequence[Trial]) -> None:
        write_yaml_atomic(self.path / TRIALS_FILE, [t.row() for t in trials])


@dataclass(frozen=True)
class SweepDir:
    """The sweep directory (``hydra.sweep.dir``) and where each of its files lives."""

    root: Path

    def search(self, index: int, crossed: bool) -> SearchDir:
        return SearchDir(self.root / f"combo_{index}" if crossed else self.root)

    @staticmethod
    def job_subdir(job: int, plan_index: int, crossed: bool, *, final: bool = False) -> str:
        """The job's directory relative to the sweep directory (``hydra.sweep.subdir``)."""
        return f"{f'combo_{plan_index}/' if crossed else ''}{f'{FINAL_DIR}/' if final else ''}{job}"

    def job_dir(self, subdir: str) -> Path:
        return self.root / subdir

    @property
    def state(self) -> Path:
        return self.root / STATE_FILE

    @property
    def results(self) -> Path:
        return self.root / RESULTS_FILE

    @property
    def leaderboard(self) -> Path:
        return self.root / LEADERBOARD_FILE

    @property
    def best(self) -> Path:
        return self.root / BEST_FILE

    @property
    def multirun(self) -> Path:
        return self.root / MULTIRUN_FILE


def job_outcome(job_dir: Path, value: float | None, error: str | None) -> Outcome:
    """A launched job's outcome with what its task left in ``metrics.json`` (if anything)."""
    left = read_json(job_dir / METRICS_FILE) or {}
    return Outcome(value, error, str(job_dir), left.get("run_id"), left.get("metrics") or {})


def finished_outcome(job_dir: Path, recovered: Outcome | None = None) -> Outcome | None:
    """A job's outcome from its ``result.json``; else ``recovered`` (a finished MLflow run of a
    process that died before writing the file), which is then written down; ``None``: run it
    (also when the file says the job was interrupted)."""
    record = read_json(job_dir / RESULT_FILE)
    if record is not None and record.get("status") == "completed":
        return job_outcome(job_dir, float(record["value"]), None)
    if record is not None and record.get("status") == "failed":
        return job_outcome(job_dir, None, record.get("error"))
    if recovered is not None:
        write_json_atomic(job_dir / RESULT_FILE, {"status": "completed", "value": recovered.value,
                                                  "recovered": "mlflow"})
        return replace(recovered, job_dir=str(job_dir))
    return None


def write_best_config(job_dir: Path, target: Path) -> None:
    """The full config of the best trial (its job's ``.hydra/config.yaml``, resolved if it can be)."""
    from omegaconf import OmegaConf

    source = job_dir / ".hydra" / "config.yaml"
    if not source.exists():
        return
    cfg = OmegaConf.load(source)
    try:
        text = OmegaConf.to_yaml(cfg, resolve=True)
    except Exception:
        text = OmegaConf.to_yaml(cfg)
    write_text_atomic(target, f"# full config of the best trial ({job_dir})\n{text}")


@contextmanager
def job_lock(job_dir: Path) -> Iterator[None]:
    """Own ``job_dir`` while a job runs in it: a lock file naming this host and process. A lock
    of a live process is :class:`JobBusy` (never two processes in one job); a lock left by a
    dead process of this host is taken over; another host's lock is respected (its liveness
    cannot be checked from here: remove the file when that machine is gone)."""
    path = Path(job_dir) / JOB_LOCK
    mine = f"{socket.gethostname()} {os.getpid()}"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            held = path.read_text() if path.exists() else ""
            host, _, pid = held.partition(" ")
            owner = _owner_here(held)
            dead = owner is not None and not alive(owner)
            if (dead or _nameless(path, held)) and path.exists() and path.read_text() == held:
                path.unlink(missing_ok=True)  # a dead process's: take it over
                continue
            raise JobBusy(f"job directory {job_dir} is in use by process {pid or '?'} on {host or '?'} "
                          f"({path})") from None
        try:
            with os.fdopen(fd, "w") as f:
                f.write(mine)
        except BaseException:  # e.g. a full disk: leave no nameless lock behind
            path.unlink(missing_ok=True)
            raise
        break
    else:
        raise JobBusy(f"job directory {job_dir}: could not take its lock {path}")
    try:
        yield
    finally:
        if path.exists() and path.read_text() == mine:
            path.unlink(missing_ok=True)


def running_jobs(root: Path) -> list[Path]:
    """Job directories under ``root`` whose lock a live process of this host holds, other than
    this one (workers still inside a job)."""
    out = []
    for lock in Path(root).rglob(JOB_LOCK):
        try:
            owner = _owner_here(lock.read_text())
        except OSError:
            continue
        if owner is not None and owner != os.getpid() and alive(owner):
            out.append(lock.parent)
    return out


def _owner_here(held: str) -> int | None:
    """The pid a lock's text (``<host> <pid>``) names when that process is of this host, else
    ``None`` (another host's, or nameless)."""
    host, _, pid = held.partition(" ")
    return int(pid) if host == socket.gethostname() and pid.isdigit() else None


def wait_for_jobs(root: Path, timeout_s: float = 10.0, poll_s: float = 0.05) -> list[Path]:
    """Wait up to ``timeout_s`` for :func:`running_jobs` to finish (after a Ctrl-C: the workers
    record their trial as interrupted and end its MLflow run); returns the ones still running."""
    deadline = time.monotonic() + timeout_s
    while (left := running_jobs(root)) and time.monotonic() < deadline:
        time.sleep(poll_s)
    return left


def _nameless(path: Path, held: str, grace_s: float = 10.0) -> bool:
    """A lock naming no owner and older than ``grace_s``: its writer died between creating and
    writing it (or could not write: a full disk), so no process holds it."""
    try:
        return not held.strip() and time.time() - path.stat().st_mtime > grace_s
    except FileNotFoundError:
        return False


def alive(pid: int) -> bool:
    """Whether process ``pid`` is running as this user (a pid taken by another user's process: no)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process holds that pid now
        return False
    return True


def write_space(path: Path, space: SearchSpace, *, header: str = "") -> None:
    """Write :func:`space_text` to ``path`` (atomically)."""
    write_text_atomic(path, space_text(space, header=header))


def read_space(path: Path) -> dict[str, str]:
    """The ``hydra.sweeper.params`` mapping stored by :func:`write_space`."""
    import yaml

    data = yaml.safe_load(path.read_text()) or {}
    return {str(k): str(v) for k, v in data.items()}
