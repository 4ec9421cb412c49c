"""The zoom sweeper's Hydra glue: compose and check every combination, launch each round through
Hydra's configured launcher, record MLflow lineage and write the sweep's result files.

The search logic itself (parsing, sampling, zooming, the round loop) is Hydra-free and lives in
``pipeline.search``, ``plugins.samplers``, ``pipeline.zoom`` and ``pipeline.sweep``.
"""

from __future__ import annotations

import logging
import math
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from pipeline.errors import ConfigError
from pipeline.registry import build
from pipeline.results import (
    METRICS_FILE,
    RESULT_FILE,
    RecordingTask,
    read_json,
    write_json_atomic,
    write_yaml_atomic,
)
from pipeline.search import Choice, Interval, SearchSpace, check_dimension, parse
from pipeline.sweep import Outcome, Round, SearchResult, TooManyFailures, Trial, search, top_count
from pipeline.tracking import MlflowTracker, resolve_uri
from pipeline.workers import JoblibWarmup
from pipeline.zoom import MODES as ZOOM_MODES
from pipeline.zoom import TRIALS_FILE, dims_summary, write_space
from plugins.samplers.base import Sampler

log = logging.getLogger(__name__)
STATE_FILE = "sweep_state.json"
_ABSENT = object()


@dataclass
class Plan:
    """One combination of the crossed values, composed and checked, ready to search."""

    index: int
    combo: list[str]
    base: list[str]  # fixed overrides + this combination's crossed values
    space: SearchSpace
    sampler: Sampler
    direction: str
    metric: str | None
    tracking: dict[str, Any] | None  # the task's tracking settings when MLflow is on
    directory: Path
    label: str
    sampler_name: str = ""
    run: MlflowTracker | None = None
    result: SearchResult | None = None
    importance: Any = None  # pipeline.importance.ImportanceResult once estimated
    base_seed: int | None = None  # the task's seed, which final_seeds re-runs vary
    noise: dict[str, Any] | None = None  # seed-to-seed spread of the top configurations


class ZoomSweeperImpl:
    def __init__(
        self,
        params: Mapping[str, Any] | None = None,
        rounds: int = 3,
        trials_per_round: int = 16,
        top_k: int | None = None,
        top_fraction: float = 0.25,
        zoom: str = "span",
        margin: float = 0.1,
        shrink: float = 0.5,
        min_width: float = 0.05,
        max_failure_rate: float = 0.5,
        dry_run: bool = False,
        direction: str = "minimize",
        sampler: Sampler | Mapping[str, Any] | None = None,
        check: str | None = None,
        resume: bool = False,
        importance: bool = True,
        plots: bool = True,
        quiet: bool = False,
        final_seeds: int = 0,
        final_top: int = 3,
        seed_key: str = "seed",
    ) -> None:
        self.params = dict(params or {})
        self.rounds = rounds
        self.trials_per_round = trials_per_round
        self.top_k = top_k
        self.top_fraction = top_fraction
        self.zoom = zoom
        self.margin = margin
        self.shrink = shrink
        self.min_width = min_width
        self.max_failure_rate = max_failure_rate
        self.dry_run = dry_run
        self.direction = direction
        # Hydra instantiates the sweeper config recursively, so the fallback arrives built
        self.fallback_sampler = sampler
        self.check = check
        self.resume = resume
        self.importance = importance
        self.plots = plots
        self.quiet = quiet
        self.progress: Any = None
        self.final_seeds = final_seeds
        self.final_top = final_top
        self.seed_key = seed_key
        self.n_plans = 1
        self.state: dict[str, Any] = {}
        self.warmup: JoblibWarmup | None = None

    # --- Hydra entry points ---------------------------------------------------------------

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=RecordingTask(task_function), config=config)
        self.sweep_dir = Path(config.hydra.sweep.dir)

    def sweep(self, arguments: list[str]) -> Any:
        try:
            self._check_settings()
            space = parse(_plain(self.params), arguments)
            if not self.dry_run:  # process-pool workers start and import while this process plans
                self.warmup = JoblibWarmup(self.launcher, tracking=_tracking_on(self.config)).start()
            combos = space.combinations()
            self.n_plans = len(combos)
            plans = [self._plan(space, combo, i, len(combos) > 1) for i, combo in enumerate(combos)]
            if not self.dry_run:
                self.state = self._load_state(arguments)
        except ConfigError as exc:
            if self.warmup is not None:
                self.warmup.cancel()
            _user_error(exc)
        if self.dry_run:
            self._print_dry_run(plans)
            return None
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        if not self.state:
            OmegaConf.save(self.config, self.sweep_dir / "multirun.yaml")
        parent = self._start_parent(plans, space)
        self.state.update(arguments=list(arguments), params=_plain(self.params), status="running",
                          parent_run_id=parent.run_id if parent else None,
                          combo_run_ids={str(p.index): p.run.run_id for p in plans if p.run is not None},
                          resume_command=self._resume_command())
        self.state.setdefault("rounds_logged", {})
        self._save_state()
        log.info(f"If interrupted, continue with: {self.state['resume_command']}")
        from pipeline.progress import SweepProgress

        total = len(plans) * (self.rounds * self.trials_per_round + self.final_top * self.final_seeds)
        try:
            with SweepProgress(total, self.rounds, plans[0].direction, quiet=self.quiet,
                               metric=plans[0].metric) as self.progress:
                for plan in plans:
                    self._run_plan(plan, parent, len(plans) > 1)
        except TooManyFailures as exc:
            self._finish(plans, parent)
            _end_runs(plans, parent, "FAILED", {"failure_reason": str(exc)})
            self.state["status"] = "failed"
            self._save_state()
            print(f"Error: sweep stopped: {exc}. Results so far: {self.sweep_dir / 'optimization_results.yaml'}",
                  file=sys.stderr)
            sys.exit(3)
        except BaseException as exc:
            _end_runs(plans, parent, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED",
                      {"failure_reason": f"{type(exc).__name__}: {exc}"[:5000]})
            raise
        summary = self._finish(plans, parent)
        _end_runs(plans, parent, "FINISHED")
        self.state["status"] = "finished"
        self._save_state()
        return summary

    # --- resume ---------------------------------------------------------------------------

    def _load_state(self, arguments: Sequence[str]) -> dict[str, Any]:
        """The saved state of the sweep directory when resuming; refuses to reuse a directory
        that already holds a sweep unless ``resume`` is set (jobs would overwrite each other)."""
        state = read_json(self.sweep_dir / STATE_FILE)
        if not self.resume:
            if state is not None:
                raise ConfigError("hydra.sweep.dir", str(self.sweep_dir),
                                  "already holds a sweep; continue it with hydra.sweeper.resume=true "
                                  "or choose a new directory")
            return {}
        if state is None:
            raise ConfigError("hydra.sweeper.resume", True, f"no sweep to resume in {self.sweep_dir} "
                              "(set hydra.sweep.dir to the interrupted sweep's directory)")
        if list(state.get("arguments", [])) != list(arguments) or state.get("params") != _plain(self.params):
            raise ConfigError("hydra.sweeper.resume", True, "the overrides differ from the interrupted sweep's; "
                              f"resume with: {state.get('resume_command')}")
        return state

    def _save_state(self) -> None:
        write_json_atomic(self.sweep_dir / STATE_FILE, self.state)

    def _resume_command(self) -> str:
        hydra_overrides = [o for o in self.config.hydra.overrides.hydra
                           if not o.startswith(("hydra.sweep.dir=", "hydra.sweeper.resume=", "hydra.mode="))]
        args = [*self._config_dirs(), "-m", *hydra_overrides, *self.config.hydra.overrides.task,
                f"hydra.sweep.dir={self.sweep_dir.resolve()}", "hydra.sweeper.resume=true"]
        return " ".join([_program(), *map(shlex.quote, args)])

    def _config_dirs(self) -> list[str]:
        return [f"--config-dir={Path(s.path).resolve()}"
                for s in self.config.hydra.runtime.get("config_sources", [])
                if s.get("provider") == "command-line" and s.get("schema") == "file"]

    def _mark_interrupted_runs(self, plans: list[Plan], parent: MlflowTracker) -> None:
        """Runs a dead sweep process left RUNNING under this sweep become KILLED."""
        client = parent.client
        parents = {parent.run_id, *(p.run.run_id for p in plans if p.run is not None)}
        experiment_id = client.get_run(parent.run_id).info.experiment_id
        for run in client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'",
                                      max_results=10000):
            if run.data.tags.get("mlflow.parentRunId") in parents and run.info.run_id not in parents:
                client.set_tag(run.info.run_id, "failure_reason", "interrupted: the sweep process died")
                client.set_terminated(run.info.run_id, status="KILLED")

    def _finished_runs(self, run: MlflowTracker) -> dict[int, Any]:
        """Trials under ``run`` that finished in MLflow, by job number (for resume)."""
        client = run.client
        experiment_id = client.get_run(run.run_id).info.experiment_id
        found = client.search_runs([experiment_id], max_results=10000, filter_string=(
            f"tags.mlflow.parentRunId = '{run.run_id}' and attributes.status = 'FINISHED'"))
        return {int(r.data.tags["job"]): r for r in found if r.data.tags.get("job", "").isdigit()}

    # --- planning and checks --------------------------------------------------------------

    def _check_settings(self) -> None:
        def positive_int(name: str, value: Any) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"hydra.sweeper.{name}", value, "must be a positive integer")

        positive_int("rounds", self.rounds)
        positive_int("trials_per_round", self.trials_per_round)
        if self.top_k is not None:
            positive_int("top_k", self.top_k)
            if self.top_k > self.trials_per_round:
                raise ConfigError("hydra.sweeper.top_k", self.top_k,
                                  f"larger than a round (trials_per_round={self.trials_per_round})")
        if not 0 < self.top_fraction <= 1:
            raise ConfigError("hydra.sweeper.top_fraction", self.top_fraction, "must be in (0, 1]")
        if self.zoom not in ZOOM_MODES:
            raise ConfigError("hydra.sweeper.zoom", self.zoom, f"must be one of {', '.join(ZOOM_MODES)}")
        if not self.margin >= 0:
            raise ConfigError("hydra.sweeper.margin", self.margin, "must be >= 0")
        if not 0 < self.shrink <= 1:
            raise ConfigError("hydra.sweeper.shrink", self.shrink, "must be in (0, 1]")
        if not 0 < self.min_width <= 1:
            raise ConfigError("hydra.sweeper.min_width", self.min_width, "must be in (0, 1]")
        if not 0 <= self.max_failure_rate <= 1:
            raise ConfigError("hydra.sweeper.max_failure_rate", self.max_failure_rate, "must be in [0, 1]")
        if isinstance(self.final_seeds, bool) or not isinstance(self.final_seeds, int) or self.final_seeds < 0:
            raise ConfigError("hydra.sweeper.final_seeds", self.final_seeds, "must be an integer >= 0")
        if self.final_seeds:
            positive_int("final_top", self.final_top)

    def _compose(self, overrides: Sequence[str]) -> tuple[DictConfig, dict[str, str]]:
        """The task config for ``overrides`` (without the ``hydra`` node) and Hydra's chosen
        option per config group."""
        from hydra.errors import HydraException

        try:
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        except HydraException as exc:
            message = str(exc).splitlines()[0]
            raise ConfigError("overrides", " ".join(overrides), f"cannot compose: {message}") from None
        choices = {str(k): str(v) for k, v in cfg.hydra.runtime.choices.items()}
        return OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), choices

    def _plan(self, space: SearchSpace, combo: list[str], index: int, crossed: bool) -> Plan:
        base = list(space.fixed) + combo
        where = f" (combination {' '.join(combo)})" if combo else ""
        if not space.dims:
            raise ConfigError("hydra.sweeper.params", {}, "nothing to search: give interval(), choice() or "
                              "range() expressions in hydra.sweeper.params or on the command line")
        first_values = [f"{d.override_key or d.key}={_first_value(d)}" for d in space.dims]
        cfg, _ = self._compose(base)
        for dim in space.dims:
            if (dim.override_key or dim.key).startswith("+"):
                continue
            if OmegaConf.select(cfg, dim.key, default=_ABSENT) is _ABSENT:
                raise ConfigError(dim.key, dim.expression(),
                                  f"not a key of the composed config{where} (prefix it with + to add it)")
        check = _resolve_check(self.check)
        for dim in space.dims:
            if isinstance(dim, Choice) and len(dim.values) > 1:
                for value in dim.values[1:]:  # a choice may select config-group options, or bad values
                    others = [o for o in first_values if not o.startswith(f"{dim.override_key or dim.key}=")]
                    choice_cfg, _ = self._compose(base + others + [f"{dim.override_key or dim.key}={value}"])
                    if check is not None:
                        check(choice_cfg)
        cfg, choices = self._compose(base + first_values)
        if check is not None:
            check(cfg)
        sampler = self._sampler(cfg)
        for dim in space.dims:
            if isinstance(dim, Interval):
                check_dimension(dim, sampler.scale_of(dim))
        objective = cfg.get("objective") if isinstance(cfg.get("objective"), DictConfig) else None
        direction = objective.get("direction") if objective is not None else self.direction
        if direction not in ("minimize", "maximize"):
            key = "objective.direction" if objective is not None else "hydra.sweeper.direction"
            raise ConfigError(key, direction, "must be minimize or maximize")
        metric = objective.get("metric") if objective is not None else None
        base_seed = OmegaConf.select(cfg, self.seed_key, default=None)
        if self.final_seeds and (isinstance(base_seed, bool) or not isinstance(base_seed, int)):
            raise ConfigError("hydra.sweeper.seed_key", self.seed_key,
                              "final_seeds re-runs the best trials with other seeds: the task config needs an "
                              f"integer at this key (got {base_seed!r})")
        tracking = None
        if _tracking_on(cfg):
            tracking = OmegaConf.to_container(cfg.tracking, resolve=True)
            tracking["uri"] = resolve_uri(tracking.get("uri"))
        directory = self.sweep_dir / f"combo_{index}" if crossed else self.sweep_dir
        label = " ".join(combo) if combo else "all"
        sampler_name = choices.get("sampler") or sampler.name
        return Plan(index, combo, base, space, sampler, direction, metric, tracking, directory,
                    label, sampler_name, base_seed=base_seed)

    def _sampler(self, cfg: DictConfig) -> Sampler:
        """The task config's ``sampler`` group when it has one, else the sweeper's fallback."""
        node = cfg.get("sampler")
        if isinstance(node, DictConfig) and node.get("_target_"):
            sampler = build(node, "sampler")
            key = "sampler._target_"
        elif isinstance(self.fallback_sampler, Sampler):
            return self.fallback_sampler
        else:
            sampler = build(self.fallback_sampler or {}, "hydra.sweeper.sampler")
            key = "hydra.sweeper.sampler._target_"
        if not isinstance(sampler, Sampler):
            raise ConfigError(key, type(sampler).__name__, "is not a plugins.samplers.base.Sampler")
        return sampler

    def _policy(self, k: int) -> str:
        if self.zoom == "trust":
            return f"zoom: trust region of {self.shrink} x the width around the best (top {k} keep the choices)"
        return f"zoom onto the span of the top {k} with margin {self.margin}"

    def _print_dry_run(self, plans: list[Plan]) -> None:
        k = top_count(self.trials_per_round, self.top_k, self.top_fraction)
        total = len(plans) * self.rounds * self.trials_per_round
        print(f"Dry run: {len(plans)} search(es) x {self.rounds} rounds x {self.trials_per_round} trials "
              f"= {total} trials; {self._policy(k)}. Nothing launched.")
        for plan in plans:
            print(f"\n[{plan.label}] sampler {plan.sampler!r}, direction {plan.direction}"
                  + (f" of {plan.metric}" if plan.metric else ""))
            if plan.base:
                print("  fixed: " + " ".join(plan.base))
            for line in dims_summary(plan.space, plan.sampler.scale_of):
                print("  " + line)

    # --- running --------------------------------------------------------------------------

    def _start_parent(self, plans: list[Plan], space: SearchSpace) -> MlflowTracker | None:
        tracking = plans[0].tracking
        if tracking is None:
            return None
        parent = MlflowTracker(tracking["uri"], tracking["experiment"], run_name=f"sweep-{self.sweep_dir.name}",
                               flush_interval_s=0.0)
        if self.state.get("parent_run_id"):
            parent.attach(self.state["parent_run_id"])
            for plan in plans:
                run_id = self.state.get("combo_run_ids", {}).get(str(plan.index))
                if len(plans) > 1 and run_id:
                    plan.run = MlflowTracker(tracking["uri"], tracking["experiment"], flush_interval_s=0.0)
                    plan.run.attach(run_id)
                else:
                    plan.run = parent
            self._mark_interrupted_runs(plans, parent)
            return parent
        settings = {"rounds": self.rounds, "trials_per_round": self.trials_per_round, "top_k": self.top_k,
                    "top_fraction": self.top_fraction, "zoom": self.zoom, "margin": self.margin,
                    "shrink": self.shrink, "min_width": self.min_width,
                    "max_failure_rate": self.max_failure_rate, "direction": plans[0].direction,
                    "metric": plans[0].metric}
        params = {f"sweeper.{k}": v for k, v in settings.items()}
        params.update({f"space.{d.key}": d.expression() for d in space.dims})
        params.update({f"scale.{d.key}": plans[0].sampler.scale_of(d) for d in space.dims if isinstance(d, Interval)})
        description = "Zoom sweep over:\n" + "\n".join(f"- `{d.key}`: `{d.expression()}`" for d in space.dims)
        if space.crossed:
            description += "\n\nCrossed: " + ", ".join(f"`{k}` in {list(v)}" for k, v in space.crossed)
        parent.start(params, {"sweeper": "zoom", "sweep_dir": str(self.sweep_dir.resolve()),
                              "mlflow.note.content": description, "sampler": plans[0].sampler_name})
        for plan in plans:
            if len(plans) > 1:
                plan.run = MlflowTracker(tracking["uri"], tracking["experiment"], run_name=plan.label,
                                         parent_run_id=parent.run_id, flush_interval_s=0.0)
                plan.run.start({"combination": plan.label},
                               {"combination": plan.label, "mlflow.note.content": plan.label})
            else:
                plan.run = parent
        return parent

    def _launch(self, overrides: list[list[str]], first_job: int) -> Sequence[JobReturn]:
        if self.warmup is not None:
            self.warmup.wait()
        return self.launcher.launch(overrides, initial_job_idx=first_job)

    def _run_plan(self, plan: Plan, parent: MlflowTracker | None, crossed: bool) -> None:
        log.info(f"[{plan.label}] {self.rounds} rounds x {self.trials_per_round} trials, {plan.sampler!r}")

        def evaluate(r: int, proposals: Sequence[Mapping[str, Any]], space: SearchSpace) -> list[Outcome]:
            write_space(plan.directory / "zoom" / f"round_{r}.yaml", space,
                        header=f"space sampled in round {r} of {self.sweep_dir}")
            first = self._job_number(plan, r, 0)
            subdir = f"combo_{plan.index}/" if crossed else ""
            outcomes: dict[int, Outcome] = {}
            finished_runs = self._finished_runs(plan.run) if self.resume and plan.run is not None else {}
            batch = []
            for i, params in enumerate(proposals):
                job = first + i
                done = _finished_outcome(self.sweep_dir / f"{subdir}{job}", finished_runs.get(job), plan.metric)
                if done is not None:  # resuming: this trial finished before the interruption
                    outcomes[i] = done
                    continue
                overrides = plan.base + space.overrides(params)
                name = f"r{r}-t{i:02d}" if not crossed else f"c{plan.index}-r{r}-t{i:02d}"
                lineage = _lineage(plan, name, job)
                if lineage:
                    overrides += [*lineage, f"++tracking.tags.round={r}",
                                  f"++tracking.tags.sampler={plan.sampler_name}"]
                overrides.append(f"hydra.sweep.subdir={subdir}{job}")  # job directories never collide
                batch.append((i, overrides))
            if outcomes:
                log.info(f"[{plan.label}] round {r}: {len(outcomes)} trials already finished, "
                         f"{len(batch)} to run")
            self.progress.watch(plan.label, r, [self.sweep_dir / f"{subdir}{first + i}" for i in range(len(proposals))],
                                proposals)
            for chunk in _consecutive(batch):  # launchers number jobs consecutively
                returns = self._launch([o for _, o in chunk], first + chunk[0][0])
                for (i, _), ret in zip(chunk, returns, strict=True):
                    outcomes[i] = _outcome(ret)
                    if outcomes[i].value is None:
                        log.warning(f"[{plan.label}] trial r{r}-t{i:02d} failed: {outcomes[i].error}")
            self.progress.finish_round()
            return [outcomes[i] for i in range(len(proposals))]

        def on_round(record: Round) -> None:
            write_space(plan.directory / "zoom" / f"round_{record.round + 1}.yaml", record.next_space,
                        header=f"zoomed after round {record.round} of {self.sweep_dir}")
            best = record.best
            log.info(f"[{plan.label}] round {record.round}/{self.rounds}: {len(record.trials)} trials, "
                     f"{record.failed} failed; best so far {best.value if best else None}")
            for note in record.notes:
                log.warning(f"[{plan.label}] {note}")
            logged = self.state.get("rounds_logged", {}).get(str(plan.index), 0)
            if plan.run is not None and record.round > logged:  # a resumed round is logged once
                if best is not None:
                    plan.run.log_metrics({"best_value": best.value}, step=record.round)
                plan.run.log_metrics({"failed_trials": record.failed, **_bounds(record.space)}, step=record.round)
                plan.run.flush()
                plan.run.log_artifact(plan.directory / "zoom" / f"round_{record.round}.yaml", "zoom")
            partial = SearchResult([*(plan.result.rounds if plan.result else []), record], plan.direction)
            plan.result = partial
            write_yaml_atomic(plan.directory / "optimization_results.yaml", self._results(plan))
            write_yaml_atomic(plan.directory / TRIALS_FILE, [_trial_row(t) for t in partial.trials])
            self.state.setdefault("rounds_logged", {})[str(plan.index)] = max(logged, record.round)
            self._save_state()

        plan.result = None
        try:
            plan.result = search(
                plan.space, plan.sampler, evaluate, rounds=self.rounds, trials_per_round=self.trials_per_round,
                direction=plan.direction, top_k=self.top_k, top_fraction=self.top_fraction, margin=self.margin,
                min_width=self.min_width, mode=self.zoom, shrink=self.shrink,
                max_failure_rate=self.max_failure_rate, stream=(plan.index,),
                on_round=on_round)
        finally:
            if plan.run is not None and plan.run is not parent:
                best = plan.result.best if plan.result else None
                if best is not None:
                    plan.run.set_tags({"best_value": best.value})
        if self.final_seeds and plan.result is not None and plan.result.best is not None:
            self._final_seeds(plan, crossed)
        self._write_plan_outputs(plan)

    def _final_seeds(self, plan: Plan, crossed: bool) -> None:
        """Re-run the ``final_top`` best configurations with ``final_seeds`` other seeds: their
        seed-to-seed spread is the noise floor below which a difference means nothing."""
        import statistics

        assert plan.result is not None and plan.base_seed is not None
        ranked = sorted([t for t in plan.result.trials if t.ok], key=lambda t: t.value,
                        reverse=plan.direction == "maximize")[:self.final_top]
        first = (self.n_plans * self.rounds * self.trials_per_round
                 + plan.index * self.final_top * self.final_seeds)
        subdir = f"combo_{plan.index}/final/" if crossed else "final/"
        batch, outcomes, slots = [], {}, []
        for k, trial in enumerate(ranked):
            for s in range(1, self.final_seeds + 1):
                slot = k * self.final_seeds + s - 1
                job = first + slot
                slots.append((k, s))
                done = _finished_outcome(self.sweep_dir / f"{subdir}{job}", None, plan.metric)
                if done is not None:
                    outcomes[slot] = done
                    continue
                overrides = [*plan.base, *plan.space.overrides(trial.params),
                             f"{self.seed_key}={plan.base_seed + s}", f"hydra.sweep.subdir={subdir}{job}"]
                lineage = _lineage(plan, f"final-t{k}-s{s}", job)
                if lineage:
                    overrides += [*lineage, "++tracking.tags.round=final"]
                batch.append((slot, overrides))
        log.info(f"[{plan.label}] noise floor: {len(ranked)} best configurations x {self.final_seeds} more seeds")
        for chunk in _consecutive(batch):
            returns = self._launch([o for _, o in chunk], first + chunk[0][0])
            for (slot, _), ret in zip(chunk, returns, strict=True):
                outcomes[slot] = _outcome(ret)
        configs, variances = [], []
        for k, trial in enumerate(ranked):
            values = [trial.value] + [outcomes[i].value for i, (kk, _) in enumerate(slots)
                                      if kk == k and outcomes[i].value is not None]
            std = statistics.stdev(values) if len(values) > 1 else None
            if std is not None:
                variances.append(std**2)
            configs.append({"params": dict(trial.params), "values": values,
                            "mean": statistics.fmean(values), "std": std})
        pooled = math.sqrt(statistics.fmean(variances)) if variances else None
        plan.noise = {"std": pooled, "seeds": self.final_seeds + 1, "configs": configs}
        if plan.run is not None and pooled is not None:
            plan.run.log_metrics({"seed_noise_std": pooled}, step=self.rounds)

    def _job_number(self, plan: Plan, r: int, i: int) -> int:
        """Fixed job numbers (a round reserves trials_per_round), so a resumed sweep reuses them."""
        return (plan.index * self.rounds + r - 1) * self.trials_per_round + i

    # --- results --------------------------------------------------------------------------

    def _reproduce(self, plan: Plan, trial: Trial) -> str:
        """A command that runs ``trial`` again as a single run."""
        args = [*self._config_dirs(), *plan.base, *plan.space.overrides(trial.params)]
        return " ".join([_program(), *map(shlex.quote, args)])

    def _results(self, plan: Plan) -> dict[str, Any]:
        result = plan.result
        assert result is not None
        best = result.best
        out: dict[str, Any] = {"name": "zoom", "direction": plan.direction}
        if plan.metric:
            out["metric"] = plan.metric
        out["sampler"] = plan.sampler_name
        out["scales"] = {d.key: plan.sampler.scale_of(d) for d in plan.space.dims if isinstance(d, Interval)}
        out["settings"] = {"top_k": top_count(self.trials_per_round, self.top_k, self.top_fraction),
                           "zoom": self.zoom, "margin": self.margin, "shrink": self.shrink,
                           "min_width": self.min_width}
        out["best_value"] = best.value if best else None
        out["best_params"] = dict(best.params) if best else None
        if best is not None:
            out["best_trial"] = {"round": best.round, "index": best.index, "job_dir": best.job_dir}
            held_out = {k: v for k, v in (best.extra.get("metrics") or {}).items() if k.startswith("test_")}
            if held_out:
                out["best_held_out"] = {**held_out, "note": "held-out test split, never used to choose"}
            if best.extra.get("run_id"):
                out["best_trial"]["mlflow_run_id"] = best.extra["run_id"]
            out["reproduce"] = self._reproduce(plan, best)
        if plan.combo:
            out["combination"] = plan.combo
        out["trials"] = len(result.trials)
        out["failed"] = result.failed
        out["rounds"] = [{
            "round": r.round,
            "space": r.space.as_params(),
            "trials": len(r.trials),
            "failed": r.failed,
            "best_value": r.best.value if r.best else None,
            "best_params": dict(r.best.params) if r.best else None,
            **({"notes": r.notes} if r.notes else {}),
        } for r in result.rounds]
        out["next_space"] = result.rounds[-1].next_space.as_params() if result.rounds else None
        if plan.noise is not None:
            out["noise_floor"] = plan.noise
        return out

    def _write_plan_outputs(self, plan: Plan) -> None:
        assert plan.result is not None
        write_yaml_atomic(plan.directory / "optimization_results.yaml", self._results(plan))
        best = plan.result.best
        if best is not None and best.job_dir:
            _write_best_config(Path(best.job_dir), plan.directory / "best.yaml")
        if plan.run is not None:
            plan.run.log_artifact(plan.directory / "optimization_results.yaml")
            if (plan.directory / "best.yaml").exists():
                plan.run.log_artifact(plan.directory / "best.yaml")
        if self.importance:
            self._importance(plan)
        if self.plots:
            self._plots(plan)

    def _plots(self, plan: Plan) -> None:
        """Figures on the plan's run: the narrowing per round and parameter, the best trials'
        learning curves and batch-norm statistics, and the sampler comparison."""
        from pipeline import plots

        assert plan.result is not None
        folder = plan.directory / "plots"
        plots.zoom_figure(plots.space_rounds(plan.result), plan.sampler.scale_of, folder / "zoom.png",
                          plan.metric or "objective")
        plots.sampler_figure(folder / "samplers.png")
        best = sorted([t for t in plan.result.trials if t.ok and t.extra.get("run_id")],
                      key=lambda t: t.value, reverse=plan.direction == "maximize")[:3]
        if best and plan.run is not None:
            client = plan.run.client
            histories = {}
            for t in best:
                run = client.get_run(t.extra["run_id"])
                keys = [k for k in run.data.metrics if not k.startswith("test_")]
                histories[f"r{t.round}-t{t.index:02d}"] = {
                    k: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, k)] for k in keys}
            plots.best_trials_figure(histories, folder / "best_trials.png")
        if plan.run is not None:
            for png in sorted(folder.glob("*.png")):
                plan.run.log_artifact(png, "plots")

    def _importance(self, plan: Plan) -> None:
        """Which parameters mattered (pipeline.importance): importance.yaml, a bar chart, and
        metrics on the plan's MLflow run. Skipped, with a note, when too few trials succeeded."""
        from pipeline.importance import bar_chart, estimate

        assert plan.result is not None
        rows = [{"params": t.params, "value": t.value} for t in plan.result.trials]
        try:
            plan.importance = estimate(plan.space, rows, plan.sampler.scale_of, metric=plan.metric,
                                       noise_std=(plan.noise or {}).get("std"))
        except ValueError as exc:
            log.warning(f"[{plan.label}] no importance analysis: {exc}")
            return
        write_yaml_atomic(plan.directory / "importance.yaml", plan.importance.as_dict())
        bar_chart(plan.importance, plan.directory / "importance.png")
        if plan.run is not None:
            metrics = {}
            for p in plan.importance.params:
                metrics[f"importance/{p.key}"] = p.share
                metrics[f"importance_spread/{p.key}"] = p.spread
            plan.run.log_metrics(metrics, step=self.rounds)
            plan.run.flush()
            plan.run.log_artifact(plan.directory / "importance.yaml")
            plan.run.log_artifact(plan.directory / "importance.png")

    def _finish(self, plans: list[Plan], parent: MlflowTracker | None) -> dict[str, Any]:
        done = [p for p in plans if p.result is not None and p.result.rounds]
        for plan in done:
            write_yaml_atomic(plan.directory / "optimization_results.yaml", self._results(plan))
        ranked = [p for p in done if p.result.best is not None]
        sign = -1 if plans[0].direction == "maximize" else 1
        ranked.sort(key=lambda p: sign * p.result.best.value)
        summary: dict[str, Any]
        if len(plans) > 1:
            summary = {"name": "zoom", "direction": plans[0].direction}
            if plans[0].metric:
                summary["metric"] = plans[0].metric
            best_plan = ranked[0] if ranked else None
            summary["best_value"] = best_plan.result.best.value if best_plan else None
            summary["best_params"] = dict(best_plan.result.best.params) if best_plan else None
            if best_plan:
                summary["best_combination"] = best_plan.combo
                summary["reproduce"] = self._reproduce(best_plan, best_plan.result.best)
            compared = [p for p in ranked if p.noise and p.noise.get("std") is not None]
            if len(compared) > 1:
                a, b = compared[0], compared[1]
                gap = abs(a.noise["configs"][0]["mean"] - b.noise["configs"][0]["mean"])
                noise = max(a.noise["std"], b.noise["std"])
                if gap < noise:
                    summary["within_seed_noise"] = (
                        f"[{a.label}] and [{b.label}] differ by {gap:.3g} in mean over seeds, less than the seed "
                        f"noise {noise:.3g}: this sweep cannot tell them apart")
            summary["combinations"] = [{
                "combination": p.combo, "directory": p.directory.name,
                "best_value": p.result.best.value if p.result and p.result.best else None,
                "best_params": dict(p.result.best.params) if p.result and p.result.best else None,
                "failed": p.result.failed if p.result else None,
                **({"mean_over_seeds": p.noise["configs"][0]["mean"], "seed_noise_std": p.noise["std"]}
                   if p.noise and p.noise.get("std") is not None else {}),
            } for p in plans]
            write_yaml_atomic(self.sweep_dir / "optimization_results.yaml", summary)
            if best_plan and (best_plan.directory / "best.yaml").exists():
                _write_best_config(Path(best_plan.result.best.job_dir), self.sweep_dir / "best.yaml")
            if parent is not None:
                parent.log_artifact(self.sweep_dir / "optimization_results.yaml")
                if best_plan:
                    parent.log_metrics({"best_value": best_plan.result.best.value}, step=self.rounds)
                    parent.set_tags({"best_combination": best_plan.label})
        else:
            summary = self._results(plans[0]) if done else {}
        if parent is not None and ranked and ranked[0].result.best.extra.get("run_id"):
            parent.set_tags({"best_run_id": ranked[0].result.best.extra["run_id"]})
        board = self._leaderboard(plans)
        self._report(ranked, summary, board, parent)
        return summary

    def _leaderboard(self, plans: list[Plan]) -> list[dict[str, Any]]:
        """Every trial of every search, best first, also written to ``leaderboard.csv``."""
        from pipeline.report import leaderboard, write_csv

        trials = []
        for plan in plans:
            for t in plan.result.trials if plan.result else []:
                trials.append({**t.as_dict(), "run_id": t.extra.get("run_id"),
                               "combination": plan.label if len(plans) > 1 else None})
        rows = leaderboard(trials, plans[0].direction)
        write_csv(self.sweep_dir / "leaderboard.csv", rows)
        return rows

    def _report(self, ranked: list[Plan], summary: Mapping[str, Any], board: list[dict[str, Any]],
                parent: MlflowTracker | None) -> None:
        if not ranked:
            print("No trial succeeded.", file=sys.stderr)
            return
        lines = []
        for plan in ranked if len(ranked) > 1 else []:
            lines.append(f"  [{plan.label}] best {plan.result.best.value:.6g}")
        best_plan = ranked[0]
        best = best_plan.result.best
        what = f"{best_plan.metric}=" if best_plan.metric else "objective="
        params = " ".join(f"{k}={v}" for k, v in best.params.items())
        lines.insert(0, f"Best {what}{best.value:.6g} ({best_plan.direction}) in round {best.round}: {params}")
        held_out = {k: v for k, v in (best.extra.get("metrics") or {}).items() if k.startswith("test_")}
        if held_out:
            lines.append("Held-out test of that trial (never used to choose): "
                         + " ".join(f"{k}={v:.4f}" for k, v in sorted(held_out.items())))
        lines.append(f"Reproduce: {summary.get('reproduce') or self._reproduce(best_plan, best)}")
        for plan in ranked:
            if plan.noise and plan.noise.get("std") is not None:
                top = plan.noise["configs"][0]
                label = f"[{plan.label}] " if len(ranked) > 1 else ""
                n_top = len(plan.noise["configs"])
                lines.append(f"{label}Seed noise ({plan.noise['seeds']} seeds of the top {n_top}): "
                             f"best configuration {top['mean']:.6g} ± {top['std']:.2g}, noise std "
                             f"{plan.noise['std']:.2g}")
        if summary.get("within_seed_noise"):
            lines.append(f"Note: {summary['within_seed_noise']}")
        lines.append(f"Results: {self.sweep_dir / 'optimization_results.yaml'}")
        from pipeline.report import mlflow_ui_hint, table

        keys = [d.key for d in best_plan.space.dims]
        lines.append(f"\nTop trials (all of them in {self.sweep_dir / 'leaderboard.csv'}):")
        lines.append(table(board, keys, metric=best_plan.metric or "objective"))
        if parent is not None and parent.run_id:
            experiment_id = parent.client.get_run(parent.run_id).info.experiment_id
            lines.append(mlflow_ui_hint(parent.uri, experiment_id) + f"  (sweep run {parent.run_id})")
        lines.append("")
        for plan in ranked:
            if plan.importance is not None:
                label = f"[{plan.label}] " if len(ranked) > 1 else ""
                lines.append(f"{label}{plan.importance.table()}")
        print("\n".join(lines), flush=True)


# --- helpers --------------------------------------------------------------------------------

def _bounds(space: SearchSpace) -> dict[str, float]:
    """Interval bounds as metrics (``zoom/optimizer.lr/low``), so the narrowing is a chart."""
    out = {}
    for dim in space.dims:
        if isinstance(dim, Interval):
            out[f"zoom/{dim.key}/low"] = float(dim.low)
            out[f"zoom/{dim.key}/high"] = float(dim.high)
    return out


def _resolve_check(path: str | None) -> Any:
    if not path:
        return None
    from hydra.utils import get_method

    try:
        return get_method(path)
    except Exception as exc:
        raise ConfigError("hydra.sweeper.check", path, f"cannot import it ({exc})") from None


def _trial_row(trial: Trial) -> dict[str, Any]:
    row = trial.as_dict()
    row.pop("extra", None)
    if trial.extra.get("run_id"):
        row["mlflow_run_id"] = trial.extra["run_id"]
    return row


def _plain(params: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(params, DictConfig):
        return OmegaConf.to_container(params, resolve=True)  # type: ignore[return-value]
    return dict(params)


def _first_value(dim: Any) -> str:
    if isinstance(dim, Interval):
        return str(int(dim.low)) if dim.integer else repr(float(dim.low))
    if isinstance(dim, Choice):
        return dim.values[0]
    return str(dim.values[0])


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _outcome(ret: JobReturn) -> Outcome:
    job_dir = None
    try:
        job_dir = str(ret.hydra_cfg.hydra.runtime.output_dir)
    except Exception:  # a launcher that returns no hydra config
        pass
    extra = read_json(Path(job_dir) / METRICS_FILE) if job_dir else None
    extra = extra or {}
    if ret.status == JobStatus.COMPLETED:
        try:
            return Outcome(float(ret.return_value), None, job_dir, extra)
        except (TypeError, ValueError):
            return Outcome(None, f"return value is not a number: {ret.return_value!r}", job_dir, extra)
    exc = ret._return_value
    return Outcome(None, f"{type(exc).__name__}: {exc}", job_dir, extra)


def _lineage(plan: Plan, name: str, job: int) -> list[str]:
    """Overrides that nest a trial under the plan's MLflow run (none when tracking is off)."""
    if plan.tracking is None or plan.run is None:
        return []
    return [f"tracking.parent_run_id={plan.run.run_id}", f"tracking.uri={_quote(plan.tracking['uri'])}",
            f"tracking.run_name={name}", f"++tracking.tags.job={job}"]


def _consecutive(batch: list[tuple[int, list[str]]]) -> list[list[tuple[int, list[str]]]]:
    chunks: list[list[tuple[int, list[str]]]] = []
    for item in batch:
        if chunks and chunks[-1][-1][0] + 1 == item[0]:
            chunks[-1].append(item)
        else:
            chunks.append([item])
    return chunks


def _finished_outcome(job_dir: Path, mlflow_run: Any, metric: str | None) -> Outcome | None:
    """A trial's outcome from its ``result.json``, or from its finished MLflow run when the
    process died between logging the run and writing the file; ``None`` if it must run."""
    record = read_json(job_dir / RESULT_FILE)
    extra = read_json(job_dir / METRICS_FILE) or {}
    if record is not None and record.get("status") == "completed":
        return Outcome(float(record["value"]), None, str(job_dir), extra)
    if record is not None and record.get("status") == "failed":
        return Outcome(None, record.get("error"), str(job_dir), extra)
    if mlflow_run is not None and metric and metric in mlflow_run.data.metrics:
        value = mlflow_run.data.metrics[metric]
        extra = {"metrics": dict(mlflow_run.data.metrics), "run_id": mlflow_run.info.run_id}
        write_json_atomic(job_dir / RESULT_FILE, {"status": "completed", "value": value, "recovered": "mlflow"})
        return Outcome(value, None, str(job_dir), extra)
    return None


def _write_best_config(job_dir: Path, target: Path) -> None:
    source = job_dir / ".hydra" / "config.yaml"
    if not source.exists():
        return
    cfg = OmegaConf.load(source)
    try:
        text = OmegaConf.to_yaml(cfg, resolve=True)
    except Exception:
        text = OmegaConf.to_yaml(cfg)
    from pipeline.results import write_text_atomic

    write_text_atomic(target, f"# full config of the best trial ({job_dir})\n{text}")


def _program() -> str:
    main = Path(sys.argv[0])
    if main.name == "__main__.py":
        return f"python -m {main.parent.name}"
    return f"python {sys.argv[0]}"


def _end_runs(plans: list[Plan], parent: MlflowTracker | None, status: str,
              tags: Mapping[str, str] | None = None) -> None:
    for plan in plans:
        if plan.run is not None and plan.run is not parent:
            plan.run.end(status)
    if parent is not None:
        parent.end(status, tags)


def _tracking_on(config: DictConfig) -> bool:
    """Whether trials track to MLflow: the rule :meth:`ZoomSweeperImpl._plan` applies per plan."""
    tracking = config.get("tracking")
    return isinstance(tracking, DictConfig) and bool(tracking.get("enabled", False))


def _user_error(exc: ConfigError) -> None:
    print(f"Error: {exc}", file=sys.stderr)
    sys.exit(2)
