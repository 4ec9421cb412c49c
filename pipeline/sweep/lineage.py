"""The sweep's MLflow run tree: one parent run per sweep, one run per combination when crossed,
one run per trial nested under its search, and what the sweep logs on them (per-round best and
bounds, zoomed spaces, result files, plots, importance, noise floor).

Two ways to get trial runs (``hydra.sweeper.tracking``): with ``trial_keys`` the sweeper hands the
task its parent run id, URI, run name and tags as overrides and the task logs its own run (this
app: per-epoch metrics); without them the sweeper logs each trial's run itself from the outcome
(params, objective, status, round), so any Hydra app gets runs to compare. :class:`NullLineage`
is the same interface doing nothing (``tracking.uri`` null). MLflow is imported only here and in
``pipeline.tracking``."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.search.space import Interval, SearchSpace, quote
from pipeline.search.trial import Outcome, Trial
from pipeline.sweep.settings import SweepSettings, TrackingSettings


class NullLineage:
    """No MLflow: every call does nothing."""

    def start(self, searches: Sequence[Any], space: SearchSpace, settings: SweepSettings,
              resume: Mapping[str, Any] | None) -> None:
        pass

    @property
    def parent_run_id(self) -> str | None:
        return None

    def search_run_ids(self) -> dict[str, str]:
        return {}

    def trial_overrides(self, search: Any, name: str, job: int, tags: Mapping[str, str]) -> list[str]:
        return []

    def finished(self, search: Any) -> dict[int, Outcome]:
        return {}

    def log_trials(self, search: Any, trials: Sequence[tuple[int, str, Mapping[str, str], Trial]]) -> None:
        pass

    def log_metrics(self, search: Any, metrics: Mapping[str, float], step: int) -> None:
        pass

    def log_files(self, search: Any, paths: Sequence[Path], folder: str | None = None) -> None:
        pass

    def tag(self, search: Any, tags: Mapping[str, Any]) -> None:
        pass

    def histories(self, run_ids: Sequence[str]) -> dict[str, dict[str, list[tuple[int, float]]]]:
        return {}

    def inherit_inputs(self, run_id: str) -> None:
        pass

    def export(self, hook: Any, job_dir: Path) -> str | None:
        return None

    def register(self, name: str) -> str:
        raise RuntimeError("no MLflow store to register a model in")

    def end(self, status: str, reason: str | None = None) -> None:
        pass

    def ui_hint(self) -> str | None:
        return None


class SweepLineage(NullLineage):
    """The MLflow run tree of one sweep (see the module docstring)."""

    def __init__(self, tracking: TrackingSettings, sweep_name: str, sweep_dir: Path) -> None:
        assert tracking.uri is not None
        self.tracking = tracking
        self.sweep_name = sweep_name
        self._experiment: str | None = None  # the experiment of every run of this sweep
        self.sweep_dir = sweep_dir
        self.parent: Any = None
        self.runs: dict[int, Any] = {}  # search index -> its run (the parent when not crossed)
        self.metric: str | None = None

    def _tracker(self, **kwargs: Any) -> Any:
        from pipeline.tracking.tracker import MlflowTracker

        return MlflowTracker(self.tracking.uri, self.tracking.experiment, flush_interval_s=0.0, **kwargs)

    @property
    def parent_run_id(self) -> str | None:
        return self.parent.run_id if self.parent is not None else None

    def _experiment_id(self) -> str:
        """The experiment the sweep's runs are in (read from the store once)."""
        if self._experiment is None:
            self._experiment = self.parent.client.get_run(self.parent.run_id).info.experiment_id
        return self._experiment

    def search_run_ids(self) -> dict[str, str]:
        return {str(i): run.run_id for i, run in self.runs.items() if run is not self.parent}

    def start(self, searches: Sequence[Any], space: SearchSpace, settings: SweepSettings,
              resume: Mapping[str, Any] | None) -> None:
        """Create the parent (and combination) runs, or attach to a resumed sweep's and mark the
        trial runs its dead process left RUNNING as KILLED. ``resume``: ``parent_run_id`` and
        ``combo_run_ids`` of the saved state."""
        crossed = len(searches) > 1
        self.metric = settings.objective.metric
        self.parent = self._tracker(run_name=f"sweep-{self.sweep_name}")
        if resume and resume.get("parent_run_id"):
            self.parent.attach(resume["parent_run_id"])
            for s in searches:
                run_id = resume.get("combo_run_ids", {}).get(str(s.index))
                if crossed and run_id:
                    self.runs[s.index] = self._tracker()
                    self.runs[s.index].attach(run_id)
                else:
                    self.runs[s.index] = self.parent
            self._mark_interrupted()
            return
        first = searches[0]
        policy = settings.policy
        schedule = settings.schedule
        sweeper = {"n_trials": schedule.total, "rounds": schedule.rounds,
                   "schedule": ",".join(map(str, schedule.sizes)), "timeout_s": settings.timeout_s,
                   "top_k": policy.top_k, "top_fraction": policy.top_fraction, "zoom": policy.mode.value,
                   "margin": policy.margin, "shrink": policy.shrink, "min_width": policy.min_width,
                   "explore": policy.explore, "narrow_choices": policy.narrow_choices,
                   "max_failure_rate": settings.max_failure_rate,
                   "direction": settings.objective.direction.value, "metric": settings.objective.metric}
        params = {f"sweeper.{k}": v for k, v in sweeper.items()}
        params.update({f"space.{d.key}": d.expression() for d in space.dims})
        params.update({f"scale.{d.key}": first.sampler.scale_of(d) for d in space.dims if isinstance(d, Interval)})
        note = "Zoom sweep over:\n" + "\n".join(f"- `{d.key}`: `{d.expression()}`" for d in space.dims)
        if space.crossed:
            note += "\n\nCrossed: " + ", ".join(f"`{k}` in {list(v)}" for k, v in space.crossed)
        self.parent.start(params, {"sweeper": "zoom", "sweep": self.sweep_name,
                                   "sweep_dir": str(self.sweep_dir.resolve()), "mlflow.note.content": note,
                                   "sampler": first.sampler_name})
        for s in searches:
            if crossed:
                run = self._tracker(run_name=s.label, parent_run_id=self.parent.run_id)
                run.start({"combination": s.label}, {"combination": s.label, "mlflow.note.content": s.label})
                self.runs[s.index] = run
            else:
                self.runs[s.index] = self.parent

    def _mark_interrupted(self) -> None:
        """Trial runs a dead sweep process left RUNNING under this sweep become KILLED."""
        client = self.parent.client
        parents = {self.parent.run_id, *(r.run_id for r in self.runs.values())}
        for run in client.search_runs([self._experiment_id()], filter_string="attributes.status = 'RUNNING'",
                                      max_results=10000):
            if run.data.tags.get("mlflow.parentRunId") in parents and run.info.run_id not in parents:
                client.set_tag(run.info.run_id, "failure_reason", "interrupted: the sweep process died")
                client.set_terminated(run.info.run_id, status="KILLED")

    def trial_overrides(self, search: Any, name: str, job: int, tags: Mapping[str, str]) -> list[str]:
        """Overrides that nest a trial's own run under its search's run (``trial_keys`` mode)."""
        keys = self.tracking.trial_keys
        if not keys:
            return []
        out = []
        if "parent_run_id" in keys:
            out.append(f"{keys['parent_run_id']}={self.runs[search.index].run_id}")
        if "uri" in keys:
            out.append(f"{keys['uri']}={quote(self.tracking.uri)}")
        if "run_name" in keys:
            out.append(f"{keys['run_name']}={name}")
        if "tags" in keys:
            out += [f"++{keys['tags']}.{k}={v}" for k, v in {"job": job, **tags}.items()]
            out.append(f"++{keys['tags']}.sweep={quote(self.sweep_name)}")
        return out

    def _children(self, search: Any, finished_only: bool = True) -> list[Any]:
        run = self.runs[search.index]
        status = " and attributes.status = 'FINISHED'" if finished_only else ""
        return run.client.search_runs([self._experiment_id()], max_results=10000, filter_string=(
            f"tags.mlflow.parentRunId = '{run.run_id}'{status}"))

    def finished(self, search: Any) -> dict[int, Outcome]:
        """Trials of ``search`` whose MLflow run FINISHED with the objective, by job number."""
        metric = self.metric if self.tracking.trial_keys else (self.metric or "objective")
        out = {}
        for r in self._children(search):
            job = r.data.tags.get("job", "")
            if job.isdigit() and metric and metric in r.data.metrics:
                out[int(job)] = Outcome(r.data.metrics[metric], None, None, r.info.run_id, dict(r.data.metrics))
        return out

    def log_trials(self, search: Any, trials: Sequence[tuple[int, str, Mapping[str, str], Trial]]) -> None:
        """Without ``trial_keys``: one run per trial ``(job, name, tags, trial)`` under the search's
        run, logged by the sweeper from the outcome (a job already logged is skipped). A trial
        promoted in a fidelity sweep extends its configuration's run (tag ``trial``): the
        objective at the step of its fidelity, the ``jobs`` tag listing every job logged there."""
        if self.tracking.trial_keys or not trials:
            return
        children = self._children(search, finished_only=False)
        # a job is logged when a FINISHED run lists it; a run left unfinished is logged again
        have = {job for r in children if r.info.status == "FINISHED"
                for job in r.data.tags.get("jobs", r.data.tags.get("job", "")).split(",")}
        by_trial = {r.data.tags["trial"]: r for r in children if "trial" in r.data.tags}
        metric = self.metric or "objective"
        for job, name, tags, trial in trials:
            if str(job) in have:
                continue
            earlier = by_trial.get(tags.get("trial", "")) if trial.origin is not None else None
            run = self._tracker(run_name=name, parent_run_id=self.runs[search.index].run_id)
            if earlier is not None:
                run.attach(earlier.info.run_id)
                jobs = earlier.data.tags.get("jobs", earlier.data.tags.get("job", ""))
                run.set_tags({**tags, "job": str(job), "jobs": ",".join(dict.fromkeys([*jobs.split(","), str(job)]))})
            else:
                run.start(trial.params, {"job": str(job), "jobs": str(job), "sweep": self.sweep_name, **tags})
            step = int(trial.fidelity) if trial.fidelity is not None else 0
            if trial.ok:
                extra = {"fidelity": float(trial.fidelity)} if trial.fidelity is not None else {}
                run.log_metrics({metric: trial.value, **extra,
                                 **{k: v for k, v in trial.metrics.items() if k != metric}}, step=step)
                run.end("FINISHED")
            else:
                run.end("FAILED", {"failure_reason": (trial.error or "failed")[:5000]})

    def _run(self, search: Any) -> Any:
        """The run of ``search``; the parent for ``None``."""
        return self.parent if search is None else self.runs[search.index]

    def log_metrics(self, search: Any, metrics: Mapping[str, float], step: int) -> None:
        run = self._run(search)
        run.log_metrics(metrics, step=step)
        run.flush()

    def log_files(self, search: Any, paths: Sequence[Path], folder: str | None = None) -> None:
        run = self._run(search)
        for path in paths:
            if Path(path).exists():
                run.log_artifact(path, folder)

    def tag(self, search: Any, tags: Mapping[str, Any]) -> None:
        self._run(search).set_tags(tags)

    def histories(self, run_ids: Sequence[str]) -> dict[str, dict[str, list[tuple[int, float]]]]:
        """Every metric's history (step, value) of each run, ``test_*`` left out."""
        client = self.parent.client
        out = {}
        for run_id in run_ids:
            run = client.get_run(run_id)
            out[run_id] = {k: [(m.step, m.value) for m in client.get_metric_history(run_id, k)]
                           for k in run.data.metrics if not k.startswith("test_")}
        return out

    def inherit_inputs(self, run_id: str) -> None:
        """The data sets trial ``run_id`` logged as inputs, logged on the sweep's run too, so its
        collapsed row in the runs table names the data it searched on (any app that logs them)."""
        client = self.parent.client
        have = {(d.dataset.name, d.dataset.digest) for d in client.get_run(self.parent.run_id).inputs.dataset_inputs}
        inputs = [d for d in client.get_run(run_id).inputs.dataset_inputs
                  if (d.dataset.name, d.dataset.digest) not in have]
        if inputs:
            client.log_inputs(self.parent.run_id, datasets=inputs)

    def export(self, hook: Any, job_dir: Path) -> str | None:
        """Call the app's export hook (``hydra.sweeper.export``) with the best trial's job
        directory and the sweep's run; returns the URI of the model it logged. Once per best
        trial: the sweep's run keeps which job's model it holds (``model_job``, ``model_uri``), so
        resuming a finished sweep does not log the same model again."""
        job = self._job_name(job_dir)
        tags = self.parent.client.get_run(self.parent.run_id).data.tags
        if tags.get("model_job") == job and tags.get("model_uri"):
            return tags["model_uri"]
        uri = hook(job_dir=job_dir, run_id=self.parent.run_id, tracking_uri=self.tracking.uri)
        if uri:
            self.parent.set_tags({"model_job": job, "model_uri": uri})
        return uri

    def _job_name(self, job_dir: Path) -> str:
        """A job directory named relative to the sweep's (the same after the sweep is moved)."""
        try:
            return Path(job_dir).resolve().relative_to(self.sweep_dir.resolve()).as_posix()
        except ValueError:
            return str(job_dir)

    def register(self, name: str) -> str:
        """Register the newest model logged on the sweep's run as ``name``; returns its version.
        Once per logged model and name: the sweep's run keeps the version it registered
        (``registered_model``: ``<name>/<version>`` of ``model_uri``)."""
        import mlflow

        tags = self.parent.client.get_run(self.parent.run_id).data.tags
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


def sweep_name(sweep_dir: Path) -> str:
    """A sweep's name in MLflow (run name ``sweep-<name>``, tag ``sweep`` on it and its trials):
    the last two parts of its directory, Hydra's ``<date>/<time>`` by default."""
    return f"{sweep_dir.resolve().parent.name}/{sweep_dir.resolve().name}"


def make_lineage(tracking: TrackingSettings, sweep_dir: Path) -> NullLineage:
    return SweepLineage(tracking, sweep_name(sweep_dir), sweep_dir) if tracking.on else NullLineage()
