"""The sweep's MLflow run tree: one parent run per sweep, one run per combination when crossed,
one run per trial nested under its search, and what the sweep logs on them (per-round best and
bounds, zoomed spaces, result files, plots, importance, noise floor, the best trial's model).

Two ways to get trial runs (``hydra.sweeper.tracking``): with ``trial_keys`` the sweeper hands the
task its parent run id, URI, run name and tags as overrides and the task logs its own run (this
app: per-epoch metrics); without them the sweeper logs each trial's run itself from the outcome
(params, objective, status, round), so any Hydra app gets runs to compare.

:class:`Lineage` is what the runner sees; :class:`NullLineage` keeps nothing (``tracking.uri``
null), :class:`SweepLineage` keeps it in MLflow. The run tree's names (tags, param prefixes) are
written here and read back here only (resume: :meth:`SweepLineage.finished`; the importance
command: :func:`read_search`). MLflow is imported only here, in pipeline.tracking and in the
app's model export."""

from __future__ import annotations

import contextlib
import functools
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pipeline.search.space import Interval, SearchSpace, quote
from pipeline.search.trial import Outcome, Trial
from pipeline.sweep.settings import SweepSettings, TrackingSettings

# The run tree's names. Tags of a trial's run: its job number(s), its configuration's first trial
# and rung (fidelity sweeps), its round ("final" for seed re-runs), the sweep's name.
JOB, JOBS, TRIAL, RUNG, ROUND, SWEEP, COMBINATION = "job", "jobs", "trial", "rung", "round", "sweep", "combination"
PARENT = "mlflow.parentRunId"
# Params of the sweep's run: the space's expressions, each interval's scale, the sweeper's settings.
SPACE, SCALE, SWEEPER = "space.", "scale.", "sweeper."
SEED_RERUN = "final"  # the round tag of a seed re-run


@dataclass(frozen=True)
class RunIds:
    """The sweep's runs, as the resume state keeps them."""

    parent: str | None = None
    searches: Mapping[str, str] = field(default_factory=dict)  # search index -> its combination's run


@dataclass(frozen=True)
class LoggedTrial:
    """A finished trial as the sweeper logs its run: job number, run name, tags and the trial."""

    job: int
    name: str
    tags: Mapping[str, str]
    trial: Trial


@dataclass(frozen=True)
class Model:
    """What became of the best trial's model: its URI and registered version, or why not."""

    uri: str | None = None
    version: str | None = None
    problem: str | None = None  # the export hook failed: the results stand without it
    registration_problem: str | None = None


class Lineage(Protocol):
    """Where a sweep's records go besides its directory. ``search`` is a planned search
    (pipeline.sweep.plan.Search), ``None`` for the sweep's own run."""

    def start(self, searches: Sequence[Any], space: SearchSpace, settings: SweepSettings,
              resumed: RunIds | None) -> RunIds:
        """Open the runs (or reopen a resumed sweep's); returns their ids for the state."""

    def trial_overrides(self, search: Any, name: str, job: int, tags: Mapping[str, str]) -> list[str]:
        """Task overrides that make a trial log its own run under its search's run."""

    def finished(self, search: Any) -> dict[int, Outcome]:
        """Trials whose runs finished with the objective, by job number (a resume reads them)."""

    def log_trials(self, search: Any, trials: Sequence[LoggedTrial]) -> None:
        """Runs for trials the task did not log itself."""

    def record(self, search: Any, *, metrics: Mapping[str, float] | None = None, step: int = 0,
               files: Sequence[Path] = (), folder: str | None = None, tags: Mapping[str, Any] | None = None) -> None:
        """Metrics (at ``step``), files (under ``folder``) and tags on the run of ``search``."""

    def histories(self, run_ids: Sequence[str]) -> dict[str, dict[str, list[tuple[int, float]]]]:
        """Every metric's (step, value) history of each run (learning curves)."""

    def publish(self, best: Trial, export: Callable[..., str | None] | None, register: str | None) -> Model:
        """Point the sweep's run at its best trial; with ``export``, log that trial's model there
        (and register it as ``register``), once however often the sweep is resumed."""

    def end(self, status: str, reason: str | None = None) -> None: ...

    def ui_hint(self) -> str | None:
        """How to open the MLflow UI on the sweep's runs."""


class NullLineage:
    """No MLflow: nothing is kept, nothing is found."""

    def start(self, searches: Sequence[Any], space: SearchSpace, settings: SweepSettings,
              resumed: RunIds | None) -> RunIds:
        return RunIds()

    def trial_overrides(self, search: Any, name: str, job: int, tags: Mapping[str, str]) -> list[str]:
        return []

    def finished(self, search: Any) -> dict[int, Outcome]:
        return {}

    def log_trials(self, search: Any, trials: Sequence[LoggedTrial]) -> None:
        pass

    def record(self, search: Any, *, metrics: Mapping[str, float] | None = None, step: int = 0,
               files: Sequence[Path] = (), folder: str | None = None, tags: Mapping[str, Any] | None = None) -> None:
        pass

    def histories(self, run_ids: Sequence[str]) -> dict[str, dict[str, list[tuple[int, float]]]]:
        return {}

    def publish(self, best: Trial, export: Callable[..., str | None] | None, register: str | None) -> Model:
        return Model()

    def end(self, status: str, reason: str | None = None) -> None:
        pass

    def ui_hint(self) -> str | None:
        return None


class SweepLineage:
    """The MLflow run tree of one sweep (see the module docstring)."""

    def __init__(self, tracking: TrackingSettings, sweep_name: str, sweep_dir: Path) -> None:
        assert tracking.uri is not None
        self.tracking, self.sweep_name, self.sweep_dir = tracking, sweep_name, sweep_dir
        self.parent: Any = None
        self.runs: dict[int, Any] = {}  # search index -> its run (the parent when not crossed)
        self.metric: str | None = None
        self._experiment: str | None = None  # the experiment of every run of this sweep

    @functools.cached_property
    def client(self) -> Any:
        """The store's client, connected on first use (inside the runner's fault handling)."""
        from pipeline.tracking.tracker import connect

        return connect(self.tracking.uri)

    def _tracker(self, **kwargs: Any) -> Any:
        from pipeline.tracking.tracker import MlflowTracker

        return MlflowTracker(self.tracking.uri, self.tracking.experiment, flush_interval_s=0.0, **kwargs)

    def _experiment_id(self) -> str:
        """The experiment the sweep's runs are in (read from the store once)."""
        if self._experiment is None:
            self._experiment = self.client.get_run(self.parent.run_id).info.experiment_id
        return self._experiment

    def start(self, searches: Sequence[Any], space: SearchSpace, settings: SweepSettings,
              resumed: RunIds | None) -> RunIds:
        """Create the parent (and combination) runs, or attach to a resumed sweep's and mark the
        trial runs its dead process left RUNNING as KILLED."""
        crossed = len(searches) > 1
        self.metric = settings.objective.metric
        self.parent = self._tracker(run_name=f"sweep-{self.sweep_name}")
        if resumed is not None and resumed.parent:
            self.parent.attach(resumed.parent)
            for s in searches:
                self.runs[s.index] = self.parent
                if crossed and resumed.searches.get(str(s.index)):
                    self.runs[s.index] = self._tracker()
                    self.runs[s.index].attach(resumed.searches[str(s.index)])
            self._mark_interrupted()
        else:
            first = searches[0]
            self.parent.start(sweep_params(space, settings, first.sampler.scale_of),
                              {"sweeper": "zoom", SWEEP: self.sweep_name, "sweep_dir": str(self.sweep_dir.resolve()),
                               "mlflow.note.content": _note(space), "sampler": first.sampler_name})
            for s in searches:
                self.runs[s.index] = self.parent
                if crossed:
                    self.runs[s.index] = self._tracker(run_name=s.label, parent_run_id=self.parent.run_id)
                    self.runs[s.index].start({COMBINATION: s.label}, {COMBINATION: s.label,
                                                                      "mlflow.note.content": s.label})
        return RunIds(self.parent.run_id, {str(i): r.run_id for i, r in self.runs.items() if r is not self.parent})

    def _mark_interrupted(self) -> None:
        """Trial runs a dead sweep process left RUNNING under this sweep become KILLED."""
        parents = {self.parent.run_id, *(r.run_id for r in self.runs.values())}
        for run in self.client.search_runs([self._experiment_id()], filter_string="attributes.status = 'RUNNING'",
                                           max_results=10000):
            if run.data.tags.get(PARENT) in parents and run.info.run_id not in parents:
                self.client.set_tag(run.info.run_id, "failure_reason", "interrupted: the sweep process died")
                self.client.set_terminated(run.info.run_id, status="KILLED")

    def trial_overrides(self, search: Any, name: str, job: int, tags: Mapping[str, str]) -> list[str]:
        """Overrides that nest a trial's own run under its search's run (``trial_keys`` mode)."""
        keys = self.tracking.trial_keys or {}
        out = []
        if "parent_run_id" in keys:
            out.append(f"{keys['parent_run_id']}={self.runs[search.index].run_id}")
        if "uri" in keys:
            out.append(f"{keys['uri']}={quote(self.tracking.uri)}")
        if "run_name" in keys:
            out.append(f"{keys['run_name']}={name}")
        if "tags" in keys:
            out += [f"++{keys['tags']}.{k}={v}" for k, v in {JOB: job, **tags}.items()]
            out.append(f"++{keys['tags']}.{SWEEP}={quote(self.sweep_name)}")
        return out

    def _children(self, search: Any, finished_only: bool = True) -> list[Any]:
        status = " and attributes.status = 'FINISHED'" if finished_only else ""
        return self.client.search_runs([self._experiment_id()], max_results=10000, filter_string=(
            f"tags.{PARENT} = '{self.runs[search.index].run_id}'{status}"))

    def finished(self, search: Any) -> dict[int, Outcome]:
        """Trials of ``search`` whose MLflow run FINISHED with the objective, by job number."""
        metric = self.metric if self.tracking.trial_keys else (self.metric or "objective")
        out = {}
        for r in self._children(search):
            job = r.data.tags.get(JOB, "")
            if job.isdigit() and metric and metric in r.data.metrics:
                out[int(job)] = Outcome(r.data.metrics[metric], None, None, r.info.run_id, dict(r.data.metrics))
        return out

    def log_trials(self, search: Any, trials: Sequence[LoggedTrial]) -> None:
        """Without ``trial_keys``: one run per trial under the search's run, logged by the sweeper
        from the outcome (a job already logged is skipped). A trial promoted in a fidelity sweep
        extends its configuration's run (tag ``trial``): the objective at the step of its fidelity,
        the ``jobs`` tag listing every job logged there."""
        if self.tracking.trial_keys or not trials:
            return
        children = self._children(search, finished_only=False)
        # a job is logged when a FINISHED run lists it; a run left unfinished is logged again
        have = {job for r in children if r.info.status == "FINISHED"
                for job in r.data.tags.get(JOBS, r.data.tags.get(JOB, "")).split(",")}
        by_trial = {r.data.tags[TRIAL]: r for r in children if TRIAL in r.data.tags}
        for logged in trials:
            if str(logged.job) not in have:
                earlier = by_trial.get(logged.tags.get(TRIAL, "")) if logged.trial.origin is not None else None
                self._log_trial(search, logged, earlier)

    def _log_trial(self, search: Any, logged: LoggedTrial, earlier: Any) -> None:
        job, trial, tags = str(logged.job), logged.trial, logged.tags
        run = self._tracker(run_name=logged.name, parent_run_id=self.runs[search.index].run_id)
        if earlier is not None:
            run.attach(earlier.info.run_id)
            jobs = earlier.data.tags.get(JOBS, earlier.data.tags.get(JOB, ""))
            run.set_tags({**tags, JOB: job, JOBS: ",".join(dict.fromkeys([*jobs.split(","), job]))})
        else:
            run.start(trial.params, {JOB: job, JOBS: job, SWEEP: self.sweep_name, **tags})
        if not trial.ok:
            run.end("FAILED", {"failure_reason": (trial.error or "failed")[:5000]})
            return
        metric = self.metric or "objective"
        extra = {"fidelity": float(trial.fidelity)} if trial.fidelity is not None else {}
        run.log_metrics({metric: trial.value, **extra, **{k: v for k, v in trial.metrics.items() if k != metric}},
                        step=int(trial.fidelity) if trial.fidelity is not None else 0)
        run.end("FINISHED")

    def record(self, search: Any, *, metrics: Mapping[str, float] | None = None, step: int = 0,
               files: Sequence[Path] = (), folder: str | None = None, tags: Mapping[str, Any] | None = None) -> None:
        run = self.parent if search is None else self.runs[search.index]
        if metrics:
            run.log_metrics(metrics, step=step)
            run.flush()
        for path in files:
            if Path(path).exists():
                run.log_artifact(path, folder)
        if tags:
            run.set_tags(tags)

    def histories(self, run_ids: Sequence[str]) -> dict[str, dict[str, list[tuple[int, float]]]]:
        """Every metric's history (step, value) of each run, ``test_*`` left out."""
        return {run_id: {k: [(m.step, m.value) for m in self.client.get_metric_history(run_id, k)]
                         for k in self.client.get_run(run_id).data.metrics if not k.startswith("test_")}
                for run_id in run_ids}

    def publish(self, best: Trial, export: Callable[..., str | None] | None, register: str | None) -> Model:
        """Tag the sweep's run with the best trial's run, list that trial's data sets as its inputs
        (so its row in the runs table names the data it searched on); then the model, if asked."""
        if best.run_id:
            self.parent.set_tags({"best_run_id": best.run_id})
            self._inherit_inputs(best.run_id)
        if export is None or not best.job_dir:
            return Model()
        try:
            uri = self._export(export, Path(best.job_dir))
        except Exception as exc:  # the results stand without it
            return Model(problem=f"{type(exc).__name__}: {exc}")
        if not uri or not register:
            return Model(uri)
        try:
            return Model(uri, self._register(register))
        except Exception as exc:
            return Model(uri, registration_problem=f"{type(exc).__name__}: {exc}")

    def _inherit_inputs(self, run_id: str) -> None:
        have = {(d.dataset.name, d.dataset.digest)
                for d in self.client.get_run(self.parent.run_id).inputs.dataset_inputs}
        inputs = [d for d in self.client.get_run(run_id).inputs.dataset_inputs
                  if (d.dataset.name, d.dataset.digest) not in have]
        if inputs:
            self.client.log_inputs(self.parent.run_id, datasets=inputs)

    def _export(self, hook: Callable[..., str | None], job_dir: Path) -> str | None:
        """The app's export hook (``hydra.sweeper.export``) with the best trial's job directory and
        the sweep's run; once per best trial: the sweep's run keeps which job's model it holds
        (``model_job``, ``model_uri``), so resuming a finished sweep does not log it again."""
        try:
            job = Path(job_dir).resolve().relative_to(self.sweep_dir.resolve()).as_posix()
        except ValueError:
            job = str(job_dir)  # named relative to the sweep's directory: the same after a move
        tags = self.client.get_run(self.parent.run_id).data.tags
        if tags.get("model_job") == job and tags.get("model_uri"):
            return tags["model_uri"]
        uri = hook(job_dir=job_dir, run_id=self.parent.run_id, tracking_uri=self.tracking.uri)
        if uri:
            self.parent.set_tags({"model_job": job, "model_uri": uri})
        return uri

    def _register(self, name: str) -> str:
        """Register the newest model logged on the sweep's run as ``name``; returns its version.
        Once per logged model and name: the sweep's run keeps the version it registered
        (``registered_model``: ``<name>/<version>`` of ``model_uri``)."""
        import mlflow

        tags = self.client.get_run(self.parent.run_id).data.tags
        done = tags.get("registered_model", "")
        if done.rpartition("/")[0] == name and tags.get("registered_uri") == tags.get("model_uri"):
            return done.rpartition("/")[2]
        mlflow.set_tracking_uri(self.tracking.uri)
        models = mlflow.search_logged_models(
            experiment_ids=[self._experiment_id()], filter_string=f"source_run_id = '{self.parent.run_id}'",
            order_by=[{"field_name": "creation_time", "ascending": False}], max_results=1, output_format="list")
        if not models:
            raise LookupError(f"the export hook logged no model on the sweep's run {self.parent.run_id}")
        with contextlib.redirect_stderr(io.StringIO()):  # MLflow prints "Successfully registered ..."
            version = str(mlflow.register_model(models[0].model_uri, name).version)
        self.parent.set_tags({"registered_model": f"{name}/{version}", "registered_uri": tags.get("model_uri", "")})
        return version

    def end(self, status: str, reason: str | None = None) -> None:
        for run in self.runs.values():
            if run is not self.parent:
                run.end(status)
        if self.parent is not None:
            self.parent.end(status, {"failure_reason": reason} if reason else None)

    def ui_hint(self) -> str | None:
        from pipeline.sweep.report import mlflow_ui_hint

        if self.parent is None or not self.parent.run_id:
            return None
        return mlflow_ui_hint(self.tracking.uri, self._experiment_id()) + f"  (sweep run {self.parent.run_id})"


def sweep_params(space: SearchSpace, settings: SweepSettings, scale_of: Callable[[Interval], str]) -> dict[str, Any]:
    """The sweep's run's params: its settings (``sweeper.*``), each dimension's expression
    (``space.*``) and each interval's scale (``scale.*``)."""
    schedule = settings.schedule
    sweeper = {"n_trials": schedule.total, "rounds": schedule.rounds, "schedule": ",".join(map(str, schedule.sizes)),
               "timeout_s": settings.timeout_s, **settings.policy.as_params(),
               "max_failure_rate": settings.max_failure_rate, "direction": settings.objective.direction.value,
               "metric": settings.objective.metric}
    return {**{SWEEPER + k: v for k, v in sweeper.items()}, **{SPACE + d.key: d.expression() for d in space.dims},
            **{SCALE + d.key: scale_of(d) for d in space.dims if isinstance(d, Interval)}}


def _note(space: SearchSpace) -> str:
    note = "Zoom sweep over:\n" + "\n".join(f"- `{d.key}`: `{d.expression()}`" for d in space.dims)
    if space.crossed:
        note += "\n\nCrossed: " + ", ".join(f"`{k}` in {list(v)}" for k, v in space.crossed)
    return note


@dataclass(frozen=True)
class LoggedSearch:
    """A search as its MLflow runs keep it: the space's expressions, the intervals' scales, the
    objective's name and one row per trial run (``params`` as logged, text; ``value``; ``fidelity``
    when the run holds rungs), seed re-runs left out."""

    space: dict[str, str]
    scales: dict[str, str]
    metric: str | None
    trials: list[dict[str, Any]]


def read_search(run_id: str, tracking_uri: str) -> LoggedSearch:
    """The search under an MLflow sweep (or combination) run ``run_id``."""
    from pipeline.tracking.tracker import connect

    client = connect(tracking_uri)
    parent = client.get_run(run_id)
    sweep = parent
    if PARENT in parent.data.tags and not any(k.startswith(SPACE) for k in parent.data.params):
        sweep = client.get_run(parent.data.tags[PARENT])  # a combination run: the settings are its parent's
    params = sweep.data.params
    metric = params.get(SWEEPER + "metric")
    metric = None if metric in (None, "null") else metric
    rows = []
    for child in client.search_runs([parent.info.experiment_id], max_results=10000,
                                    filter_string=f"tags.{PARENT} = '{run_id}'"):
        if child.data.tags.get(ROUND) == SEED_RERUN:  # re-runs of the best are not new points
            continue
        value = child.data.metrics.get(metric) if metric and child.info.status == "FINISHED" else None
        row = {"params": dict(child.data.params), "value": value}
        if RUNG in child.data.tags and metric:  # a configuration's run holds every rung it reached
            row["fidelity"] = max((m.step for m in client.get_metric_history(child.info.run_id, metric)), default=None)
        rows.append(row)
    return LoggedSearch({k[len(SPACE):]: v for k, v in params.items() if k.startswith(SPACE)},
                        {k[len(SCALE):]: v for k, v in params.items() if k.startswith(SCALE)}, metric, rows)


def sweep_name(sweep_dir: Path) -> str:
    """A sweep's name in MLflow (run name ``sweep-<name>``, tag ``sweep`` on it and its trials):
    the last two parts of its directory, Hydra's ``<date>/<time>`` by default."""
    return f"{sweep_dir.resolve().parent.name}/{sweep_dir.resolve().name}"


def make_lineage(tracking: TrackingSettings, sweep_dir: Path) -> Lineage:
    return SweepLineage(tracking, sweep_name(sweep_dir), sweep_dir) if tracking.on else NullLineage()
