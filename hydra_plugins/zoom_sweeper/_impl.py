"""Wiring of the zoom sweeper: Hydra's settings and objects in, the Hydra-free runner
(pipeline.sweep.runner) out; user errors become one line and an exit code (2 bad input, 3 too many
failed trials, 4 tracking store unavailable after retries, 130 interrupted by Ctrl-C or SIGTERM)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.zoom_sweeper._commands import Commands
from hydra_plugins.zoom_sweeper._composer import HydraComposer
from hydra_plugins.zoom_sweeper._launcher import HydraLauncher
from hydra_plugins.zoom_sweeper._task import RecordingTask
from hydra_plugins.zoom_sweeper._warmup import JoblibWarmup
from pipeline.errors import ConfigError, InfrastructureDown, infrastructure
from pipeline.search.rounds import TooManyFailures
from pipeline.search.space import parse
from pipeline.sweep.files import SweepDir, wait_for_jobs
from pipeline.sweep.lineage import make_lineage
from pipeline.sweep.plan import describe, make_plan
from pipeline.sweep.runner import SweepRunner
from pipeline.sweep.settings import SweepSettings
from pipeline.sweep.state import SweepState

log = logging.getLogger(__name__)


class ZoomSweeperImpl:
    def __init__(self, **settings: Any) -> None:
        self.raw = settings  # checked in sweep(), where a bad value can end in one line

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context = hydra_context
        self.config = config
        self.task = RecordingTask(task_function)
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=self.task, config=config)
        self.sweep_dir = SweepDir(Path(config.hydra.sweep.dir))

    def sweep(self, arguments: list[str]) -> Any:
        warmup = None
        try:
            settings = SweepSettings.from_config(**_plain(self.raw))
            space = parse(settings.params, arguments)
            if not settings.dry_run:  # process-pool workers start and import while this process plans
                warmup = JoblibWarmup(self.launcher, tracking=settings.tracking.on).start()
            searches = make_plan(space, settings, HydraComposer(self.hydra_context, self.config), self.sweep_dir)
            state = None if settings.dry_run else SweepState.open(
                self.sweep_dir.state, resume=settings.resume, arguments=arguments, params=settings.params)
            if state is not None:
                state.schedule(settings.schedule)  # a larger n_trials extends a resumed sweep
        except ConfigError as exc:
            if warmup is not None:
                warmup.cancel()
            print(f"Error: {_named_by_user(exc, self.config)}", file=sys.stderr)
            sys.exit(2)
        if state is None:
            print(describe(searches, settings, settings.batch_size or HydraLauncher(self.launcher).parallelism))
            return None
        try:
            self.sweep_dir.root.mkdir(parents=True, exist_ok=True)
            if not state.resumed:
                OmegaConf.save(self.config, self.sweep_dir.multirun)
        except OSError as exc:  # e.g. a full disk: nothing has run yet
            print(f"Error: hydra.sweep.dir={self.sweep_dir.root}: cannot write: {exc}", file=sys.stderr)
            sys.exit(4)
        commands = Commands(self.config, self.sweep_dir.root)
        state.resume_command = commands.resume()
        self.task.capture_output = not settings.verbose
        from pipeline.sweep.progress import SweepProgress

        runner = SweepRunner(settings, searches, HydraLauncher(self.launcher, warmup), self.sweep_dir, state,
                             commands.reproduce, make_lineage(settings.tracking, self.sweep_dir.root))
        try:
            with terminate_as_interrupt(lambda: wait_for_jobs(self.sweep_dir.root)), SweepProgress(
                    runner.numbers.total, runner.schedule.rounds, settings.objective.direction.value,
                    quiet=settings.quiet, verbose=settings.verbose, metric=settings.objective.metric,
                    rungs=settings.rungs) as runner.progress:
                log.info(f"If interrupted, continue with: {state.resume_command}")
                return runner.run(space)
        except TooManyFailures as exc:
            print(f"Error: sweep stopped: {exc}. Results so far: {self.sweep_dir.results}", file=sys.stderr)
            sys.exit(3)
        except InfrastructureDown as exc:
            print(f"Error: sweep stopped: {exc}. Nothing is lost; when the store is back, continue with: "
                  f"{state.resume_command}", file=sys.stderr)
            sys.exit(4)
        except KeyboardInterrupt:
            print(f"Interrupted: the trials that finished are kept in {self.sweep_dir.root}; the ones running "
                  f"will run again. Continue with: {state.resume_command}", file=sys.stderr)
            sys.exit(130)
        except Exception as exc:  # the sweep's own writes on a full disk, the store gone between trials
            if not infrastructure(exc):
                raise
            print(f"Error: sweep stopped: {type(exc).__name__}: {exc}. Nothing is lost; when the disk or store is "
                  f"back, continue with: {state.resume_command}", file=sys.stderr)
            sys.exit(4)


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


def _named_by_user(exc: ConfigError, config: DictConfig) -> ConfigError:
    """A sweeper setting that interpolates a task key (``direction: ${objective.direction}``) is
    reported under the task key, the one the user wrote."""
    import re

    if not exc.key.startswith("hydra.sweeper."):
        return exc
    node = config.hydra.sweeper
    for part in exc.key.split(".")[2:]:
        node = node._get_node(part) if isinstance(node, DictConfig) else None
    source = node._value() if node is not None else None
    match = re.fullmatch(r"\$\{([\w.]+)\}", str(source))
    return ConfigError(match.group(1), exc.value, exc.problem) if match else exc


def _plain(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: OmegaConf.to_container(v, resolve=True) if isinstance(v, DictConfig) else v for k, v in raw.items()}
