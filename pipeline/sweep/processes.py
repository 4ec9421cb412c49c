"""What a sweep's processes do about signals and output. The sweeping process: SIGTERM ends the
sweep as Ctrl-C does (:func:`terminate_as_interrupt`), and an ending the user must act on is one
line and an exit code (:func:`exit_codes`). A worker process (joblib, Ray): Ctrl-C interrupts the
trial it runs and is ignored between trials, it ends when the sweeping process is gone, and a
job's output goes to the log file in its directory (:func:`job_output`). Hydra-free."""

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
from typing import Any, TypeVar

from pipeline.atomic import write_json_atomic
from pipeline.errors import InfrastructureDown, infrastructure
from pipeline.search.rounds import TooManyFailures
from pipeline.sweep.files import RESULT_FILE, alive, job_lock

T = TypeVar("T")


@contextmanager
def terminate_as_interrupt(on_ctrl_c: Callable[[], Any] | None = None) -> Iterator[None]:
    """SIGTERM (``kill``, a scheduler's stop) ends the sweep as Ctrl-C does: the running trials
    are recorded as interrupted, not failed, and the sweep stays resumable. A second Ctrl-C or
    SIGTERM while that is being written stops the process at once (exit 130).

    Ctrl-C reaches the terminal's whole process group, so worker processes are stopping their
    trials too: ``on_ctrl_c`` runs before this process raises (here: wait, bounded, for them to
    record their trials), since a process-pool launcher kills its workers as soon as it sees the
    interrupt. A SIGTERM to this process alone leaves the workers to the launcher."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def now(signum: int, frame: Any) -> None:
        os.write(2, b"Interrupted again: stopping now.\n")
        os._exit(130)

    def interrupt(signum: int, frame: Any) -> None:
        for sig in handled:  # until the process ends: the stop is being written
            signal.signal(sig, now)
        interrupted.append(signum)
        if signum == signal.SIGINT and on_ctrl_c is not None:
            on_ctrl_c()
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    interrupted: list[int] = []

    # SIGINT only where it is not ignored (a background job of a non-interactive shell ignores it)
    handled = [signal.SIGTERM] + ([signal.SIGINT] if signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, None)
                                  else [])
    previous = {sig: signal.signal(sig, interrupt) for sig in handled}
    try:
        yield
    finally:
        if not interrupted:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


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


@contextmanager
def in_task() -> Iterator[None]:
    """This process runs a trial meanwhile: a Ctrl-C interrupts it (:func:`interrupt_only_in_tasks`)."""
    global _IN_TASK
    _IN_TASK = True
    try:
        yield
    finally:
        _IN_TASK = False


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


def exit_with(pid: int, every_s: float = 0.5) -> None:
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


def exit_codes(run: Callable[[], T], *, results: Path, sweep_dir: Path, resume_command: str) -> T:
    """``run()``'s value; an ending the user must act on becomes one line on stderr and an exit
    code: 3 too many failed trials, 4 the tracking store or the disk unavailable (resumable),
    130 interrupted by Ctrl-C or SIGTERM (resumable)."""
    try:
        return run()
    except TooManyFailures as exc:
        print(f"Error: sweep stopped: {exc}. Results so far: {results}", file=sys.stderr)
        sys.exit(3)
    except InfrastructureDown as exc:
        print(f"Error: sweep stopped: {exc}. Nothing is lost; when the store is back, continue with: "
              f"{resume_command}", file=sys.stderr)
        sys.exit(4)
    except KeyboardInterrupt:
        print(f"Interrupted: the trials that finished are kept in {sweep_dir}; the ones running "
              f"will run again. Continue with: {resume_command}", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # the sweep's own writes on a full disk, the store gone between trials
        if not infrastructure(exc):
            raise
        print(f"Error: sweep stopped: {type(exc).__name__}: {exc}. Nothing is lost; when the disk or store is "
              f"back, continue with: {resume_command}", file=sys.stderr)
        sys.exit(4)


def run_recorded(task: Callable[[Any], Any], cfg: Any, *, job_dir: Path, overrides: list[str],
                 sweep: tuple[str, int], log_file: Path | None = None) -> Any:
    """Run one job: ``task(cfg)``, leaving its record in ``job_dir``'s ``result.json``: completed
    with its value, failed with its error, interrupted (Ctrl-C, SIGTERM: not a result, so resume
    runs it again) or unavailable (the store's or the disk's fault: run again). ``sweep``: the
    sweeping process (host, pid); in a worker process of its machine the worker ends with it and
    Ctrl-C interrupts only the job. ``log_file``: where the job's output goes instead of the
    terminal (``None``: the terminal)."""
    (host, pid), here = sweep, (socket.gethostname(), os.getpid())
    in_process = here == sweep
    if here[0] == host and not in_process:  # a worker process of this machine
        exit_with(pid)
        interrupt_only_in_tasks()
    output = job_output(log_file, in_process=in_process) if log_file is not None else nullcontext()
    # one live process per job directory (a JobBusy is retried; another live process owns the
    # directory: nothing is written into it), held until the record is written, so a sweep
    # stopping on Ctrl-C can wait for its workers' records (pipeline.sweep.files.wait_for_jobs)
    with output, job_lock(job_dir), in_task():
        return _record(task, cfg, job_dir, overrides)


def _record(task: Callable[[Any], Any], cfg: Any, out: Path, overrides: list[str]) -> Any:
    started = time.time()
    record: dict[str, Any] = {"started": started, "overrides": overrides}
    try:
        value = task(cfg)
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


def _as_number(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return repr(value)
