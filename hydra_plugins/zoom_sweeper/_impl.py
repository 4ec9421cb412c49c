"""Wiring of the zoom sweeper: Hydra's settings and objects in, the Hydra-free runner
(pipeline.sweep.runner) out; user errors become one line and an exit code (2 bad input, 3 too many
failed trials, 4 tracking store unavailable after retries, 130 interrupted by Ctrl-C or SIGTERM:
pipeline.sweep.processes.exit_codes)."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.zoom_sweeper._commands import commands as sweep_commands
from hydra_plugins.zoom_sweeper._composer import HydraComposer
from hydra_plugins.zoom_sweeper._launcher import HydraLauncher
from hydra_plugins.zoom_sweeper._task import RecordingTask
from hydra_plugins.zoom_sweeper._warmup import JoblibWarmup
from pipeline.errors import ConfigError
from pipeline.search.space import SearchSpace, parse
from pipeline.sweep.files import SweepDir, wait_for_jobs
from pipeline.sweep.lineage import make_lineage
from pipeline.sweep.plan import Search, describe, make_plan
from pipeline.sweep.processes import exit_codes, terminate_as_interrupt
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
        self.warmup: JoblibWarmup | None = None

    def sweep(self, arguments: list[str]) -> Any:
        settings, space, searches, state = self._plan(arguments)
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
        commands = sweep_commands(self.config, self.sweep_dir.root)
        state.resume_command = commands.resume()
        self.task.capture_output = not settings.verbose
        runner = SweepRunner(settings, searches, HydraLauncher(self.launcher, self.warmup), self.sweep_dir, state,
                             commands.reproduce, make_lineage(settings.tracking, self.sweep_dir.root))
        return exit_codes(lambda: self._run(runner, space), results=self.sweep_dir.results,
                          sweep_dir=self.sweep_dir.root, resume_command=state.resume_command)

    def _plan(self, arguments: list[str]) -> tuple[SweepSettings, SearchSpace, list[Search], SweepState | None]:
        """The settings, space, searches and state (``None`` for a dry run); bad input is one line
        and exit code 2, before anything is written."""
        try:
            settings = SweepSettings.from_config(**_plain(self.raw))
            space = parse(settings.params, arguments)
            if not settings.dry_run:  # process-pool workers start and import while this process plans
                self.warmup = JoblibWarmup(self.launcher, tracking=settings.tracking.on).start()
            searches = make_plan(space, settings, HydraComposer(self.hydra_context, self.config), self.sweep_dir)
            state = None if settings.dry_run else SweepState.open(
                self.sweep_dir.state, resume=settings.resume, arguments=arguments, params=settings.params)
            if state is not None:
                state.schedule(settings.schedule)  # a larger n_trials extends a resumed sweep
        except ConfigError as exc:
            if self.warmup is not None:
                self.warmup.cancel()
            print(f"Error: {_named_by_user(exc, self.config)}", file=sys.stderr)
            sys.exit(2)
        return settings, space, searches, state

    def _run(self, runner: SweepRunner, space: SearchSpace) -> Any:
        from pipeline.sweep.progress import SweepProgress

        s = runner.settings
        with terminate_as_interrupt(lambda: wait_for_jobs(self.sweep_dir.root)), SweepProgress(
                runner.numbers.total, runner.schedule.rounds, s.objective.direction.value, quiet=s.quiet,
                verbose=s.verbose, metric=s.objective.metric, rungs=s.rungs) as runner.progress:
            log.info(f"If interrupted, continue with: {runner.state.resume_command}")
            return runner.run(space)


def _named_by_user(exc: ConfigError, config: DictConfig) -> ConfigError:
    """A sweeper setting that interpolates a task key (``direction: ${objective.direction}``) is
    reported under the task key, the one the user wrote."""
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
