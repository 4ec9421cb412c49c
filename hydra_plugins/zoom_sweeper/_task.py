"""The recording task: wraps the app's task function so each job leaves ``result.json`` in its
directory (pipeline.sweep.files), which resume and the live progress read, and, unless the sweep
is verbose, writes what the job prints to the log file in that directory instead of the terminal."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from pipeline.atomic import write_json_atomic
from pipeline.errors import infrastructure
from pipeline.sweep.files import RESULT_FILE, alive, job_lock


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

        (host, pid), here = self.sweep, (socket.gethostname(), os.getpid())
        in_process = here == self.sweep
        if here[0] == host and not in_process:  # a worker process of this machine
            _exit_with(pid)
            interrupt_only_in_tasks()

        hydra = HydraConfig.get()
        out = Path(hydra.runtime.output_dir)
        output = job_output(out / f"{hydra.job.name}.log", in_process=in_process) if self.capture_output else (
            nullcontext())
        # one live process per job directory (a JobBusy is retried; another live process owns the
        # directory: nothing is written into it), held until the record is written, so a sweep
        # stopping on Ctrl-C can wait for its workers' records (pipeline.sweep.files.wait_for_jobs)
        global _IN_TASK
        with output, job_lock(out):
            _IN_TASK = True
            try:
                return self._record(cfg, out, list(hydra.overrides.task))
            finally:
                _IN_TASK = False

    def _record(self, cfg: Any, out: Path, overrides: list[str]) -> Any:
        started = time.time()
        record: dict[str, Any] = {"started": started, "overrides": overrides}
        try:
            value = self.task_function(cfg)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: not the trial's fault; resume runs it again
            record.update(status="interrupted", seconds=time.time() - started)
            write_json_atomic(out / RESULT_FILE, record)
            raise
        except BaseException as exc:
            if infrastructure(exc):  # the store's or the disk's fault, not the trial's: run it again
                record.update(status="unavailable", error=f"{type(exc).__name__}: {exc}", seconds=time.time() - started)
                try:
                    write_json_atomic(out / RESULT_FILE, record)
                except OSError:  # the disk is full: no record reads as "run it again" too
                    pass
                raise
            logging.getLogger("pipeline.sweep").error(f"trial {out.name} failed: {type(exc).__name__}: {exc}")
            record.update(status="failed", error=f"{type(exc).__name__}: {exc}",
                          traceback=traceback.format_exc(limit=20), seconds=time.time() - started)
            write_json_atomic(out / RESULT_FILE, record)
            raise
        record.update(status="completed", value=_as_number(value), seconds=time.time() - started)
        write_json_atomic(out / RESULT_FILE, record)
        return value


@contextmanager
def job_output(log_file: Path, *, in_process: bool) -> Iterator[None]:
    """While a job runs, what it prints and logs to the console goes to ``log_file`` (Hydra's job
    log, beside the job's own log records). In the sweeping process (Hydra's basic launcher)
    ``sys.stdout``/``sys.stderr`` and the console log handlers are swapped, so the sweep's live
    display keeps the terminal; in a worker process (joblib, Ray) file descriptors 1 and 2 are
    pointed at the file, which also catches what native code and inherited handlers write."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "a", buffering=1, encoding="utf-8") as sink:
        if in_process:
            handlers = [h for h in logging.getLogger().handlers
                        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]
            streams = [h.setStream(sink) for h in handlers]
            old_out, old_err = sys.stdout, sys.stderr
            sys.stdout = sys.stderr = sink
            try:
                yield
            finally:
                sys.stdout, sys.stderr = old_out, old_err
                for handler, stream in zip(handlers, streams, strict=True):
                    handler.setStream(stream)
            return
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        saved = [os.dup(1), os.dup(2)]
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


_IN_TASK = False  # this process is inside a trial
_INTERRUPT_HANDLER: list[Any] = []


def interrupt_only_in_tasks() -> None:
    """In a pool worker: Ctrl-C (SIGINT to the terminal's whole process group) interrupts the
    trial the worker runs, and is ignored between trials: a worker that dies idle makes the pool
    kill the busy ones before they record their trials as interrupted. Once per process; a
    process that ignores SIGINT keeps ignoring it."""
    if (_INTERRUPT_HANDLER or threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, None)):
        return

    def handler(signum: int, frame: Any) -> None:
        if _IN_TASK:
            raise KeyboardInterrupt

    _INTERRUPT_HANDLER.append(handler)
    signal.signal(signal.SIGINT, handler)


_WATCHED: set[int] = set()


def _exit_with(pid: int, every_s: float = 0.5) -> None:
    """End this worker process when the sweeping process ``pid`` is gone (``kill -9``, a crash):
    a trial it would finish is one the resumed sweep runs again, in the same job directory, so
    it must not finish. Once per worker; checked every ``every_s`` seconds."""
    if pid in _WATCHED:
        return
    _WATCHED.add(pid)

    def watch() -> None:
        while True:
            time.sleep(every_s)
            if not alive(pid):  # gone (or its pid reused by another user)
                os._exit(1)

    threading.Thread(target=watch, name="sweep-watch", daemon=True).start()


def _as_number(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return repr(value)
