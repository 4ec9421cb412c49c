"""The sweeper's settings (``hydra.sweeper.*``) as one frozen object, checked once.

Built from the ConfigStore dataclass's values (``hydra_plugins/zoom_sweeper/config.py`` documents
each key); every bad value is a :class:`ConfigError` naming ``hydra.sweeper.<key>``. Nothing
else reads the raw settings."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from pipeline.errors import ConfigError
from pipeline.search.fidelity import Fidelity, RungPlan
from pipeline.search.fidelity import plan as plan_rungs
from pipeline.search.objective import Direction, Objective
from pipeline.search.schedule import DEFAULT_N_TRIALS, Schedule
from pipeline.search.zoom import ZoomMode, ZoomPolicy

# What a task's config may take from the sweeper for MLflow lineage (hydra.sweeper.tracking.trial_keys).
TRIAL_KEYS = ("parent_run_id", "uri", "run_name", "tags")


@dataclass(frozen=True)
class TrackingSettings:
    """Where the sweep's MLflow runs go. ``uri`` null: no sweeper-side MLflow at all. With
    ``trial_keys`` (this app) the sweeper hands each trial its parent run, URI, run name and tags
    through those config keys and the task logs its own run; without them the sweeper logs one
    child run per trial itself (params, objective, status, round)."""

    uri: str | None = None
    experiment: str = "zoom"
    trial_keys: Mapping[str, str] | None = None

    @property
    def on(self) -> bool:
        return self.uri is not None


@dataclass(frozen=True)
class SweepSettings:
    params: Mapping[str, Any] = field(default_factory=dict)
    schedule: Schedule = Schedule.plan(DEFAULT_N_TRIALS)
    fidelity: Fidelity = Fidelity()
    rungs: RungPlan | None = None  # the fidelity schedule (fidelity.key set): its rounds are the rungs
    flat: str | None = None  # why a sweep with fidelity.key set has one rung and runs plain rounds
    timeout_s: float | None = None  # no trial starts after this many seconds of the sweep
    batch_size: int | None = None  # an adaptive sampler's proposals at once (None: the launcher's width)
    policy: ZoomPolicy = ZoomPolicy()
    max_failure_rate: float = 0.5
    dry_run: bool = False
    objective: Objective = Objective()
    sampler: Mapping[str, Any] = field(default_factory=dict)  # fallback sampler node (_target_, seed)
    check: str | None = None
    export: str | None = None  # dotted callable(job_dir, run_id, tracking_uri) -> model URI
    register_model: str | None = None  # a registered model name for what export logged
    resume: bool = False
    importance: bool = True
    plots: bool = True
    quiet: bool = False  # only the final report
    verbose: bool = False  # every job's output and the launcher's lines too
    final_seeds: int = 0
    final_top: int = 3
    seed_key: str = "seed"
    tracking: TrackingSettings = TrackingSettings()

    def describe_plan(self, schedule: Schedule) -> str:
        """The plan of one search for the dry run and the start line: its rungs, or ``schedule``'s
        rounds (the sweep's, extended on resume) and why a fidelity key gave no rungs."""
        if self.rungs is not None:
            return self.rungs.describe()
        return schedule.describe() + (f" ({self.flat})" if self.flat else "")

    @classmethod
    def from_config(cls, **raw: Any) -> SweepSettings:
        """Check and freeze the raw ``hydra.sweeper`` values (plain containers, no DictConfig);
        keys left out take the defaults above."""
        policy_keys = {"top_k", "top_fraction", "margin", "shrink", "min_width", "explore", "narrow_choices"}
        defaults = {**{f.name: getattr(ZoomPolicy(), f.name) for f in fields(ZoomPolicy) if f.name in policy_keys},
                    **{f.name: getattr(cls(), f.name) for f in fields(cls)},
                    "zoom": ZoomPolicy().mode.value, "direction": Direction.MINIMIZE.value, "metric": None,
                    "n_trials": None, "rounds": None, "trials_per_round": None, "budget": None}
        s = {**defaults, **{k: v for k, v in raw.items() if not k.startswith("_")}}
        budget = (s.pop("n_trials"), s.pop("rounds"), s.pop("trials_per_round"))
        fidelity = s["fidelity"] = s["fidelity"] if isinstance(s["fidelity"], Fidelity) else \
            Fidelity.from_config(s["fidelity"])
        spend = s.pop("budget")
        if fidelity.on and not fidelity.climbs:  # nothing to climb: plain rounds, n_trials capped by budget
            s["flat"], s["fidelity"] = fidelity.why_flat(), Fidelity()
            if spend is not None:
                plan_rungs(fidelity, None, spend)  # the same check of the value
                n_trials = budget[0] if budget[0] is not None else DEFAULT_N_TRIALS
                budget = (min(n_trials, max(1, int(spend // fidelity.max))), *budget[1:])  # type: ignore[operator]
                spend = None
            fidelity = s["fidelity"]
        if fidelity.on:
            for key, value in (("rounds", budget[1]), ("trials_per_round", budget[2])):
                if value is not None:
                    Schedule.plan(None, *((value, 1) if key == "rounds" else (1, value)))  # the value checked first
                    raise ConfigError(f"hydra.sweeper.{key}", value, "the rounds of a fidelity sweep are its rungs "
                                      "(fidelity.min, max, eta); leave it null, or turn the rungs off with "
                                      "hydra.sweeper.fidelity.key=null")
            n_trials = budget[0] if budget[0] is not None or spend is not None else DEFAULT_N_TRIALS
            if n_trials is not None:
                Schedule.plan(n_trials)  # the same check of the value
            s["rungs"] = plan_rungs(fidelity, n_trials, spend)
            s["schedule"] = s["rungs"].schedule()
        elif spend is not None:
            raise ConfigError("hydra.sweeper.budget", spend, "caps the fidelity spent; set hydra.sweeper.fidelity.key "
                              "(e.g. trainer.epochs) or use n_trials")
        else:
            s["schedule"] = Schedule.plan(*budget) if budget != (None, None, None) else \
                Schedule.plan(DEFAULT_N_TRIALS)
        if s["top_k"] is not None:
            _positive_int("top_k", s["top_k"])
            if s["top_k"] > min(s["schedule"].sizes):
                raise ConfigError("hydra.sweeper.top_k", s["top_k"],
                                  f"larger than a round ({s['schedule'].describe()})")
        if s["batch_size"] is not None:
            _positive_int("batch_size", s["batch_size"])
        if s["timeout_s"] is not None and (not _is_number(s["timeout_s"]) or not s["timeout_s"] > 0):
            raise ConfigError("hydra.sweeper.timeout_s", s["timeout_s"], "must be a positive number of seconds "
                              "(or null)")
        for name in ("top_fraction", "shrink", "min_width"):
            _number_in(name, s[name], 0, 1, "must be in (0, 1]", low_open=True)
        if not _is_number(s["explore"]) or not 0 <= s["explore"] < 1:
            raise ConfigError("hydra.sweeper.explore", s["explore"], "must be in [0, 1)")
        if not isinstance(s["narrow_choices"], bool):
            raise ConfigError("hydra.sweeper.narrow_choices", s["narrow_choices"], "must be true or false")
        if not _is_number(s["margin"]) or not s["margin"] >= 0:
            raise ConfigError("hydra.sweeper.margin", s["margin"], "must be >= 0")
        _number_in("max_failure_rate", s["max_failure_rate"], 0, 1, "must be in [0, 1]")
        if s["zoom"] not in tuple(ZoomMode):
            raise ConfigError("hydra.sweeper.zoom", s["zoom"], f"must be one of {', '.join(ZoomMode)}")
        if isinstance(s["final_seeds"], bool) or not isinstance(s["final_seeds"], int) or s["final_seeds"] < 0:
            raise ConfigError("hydra.sweeper.final_seeds", s["final_seeds"], "must be an integer >= 0")
        if s["final_seeds"]:
            _positive_int("final_top", s["final_top"])
        if s["register_model"] is not None:
            if not isinstance(s["register_model"], str) or not s["register_model"].strip():
                raise ConfigError("hydra.sweeper.register_model", s["register_model"], "must be a model name or null")
            if not s["export"]:
                raise ConfigError("hydra.sweeper.register_model", s["register_model"], "needs a model to register: "
                                  "set hydra.sweeper.export to a function that logs the best trial's model")
        if s["quiet"] is True and s["verbose"] is True:
            raise ConfigError("hydra.sweeper.verbose", True, "cannot be combined with hydra.sweeper.quiet=true")
        if s["direction"] not in tuple(Direction):
            raise ConfigError("hydra.sweeper.direction", s["direction"], "must be minimize or maximize")
        policy = ZoomPolicy(ZoomMode(s.pop("zoom")), **{k: s.pop(k) for k in policy_keys})
        objective = Objective(Direction(s.pop("direction")), s.pop("metric"))
        tracking = s.pop("tracking")
        s.update(params=dict(s["params"] or {}), sampler=dict(s["sampler"] or {}), policy=policy, objective=objective,
                 tracking=tracking if isinstance(tracking, TrackingSettings) else _tracking(tracking or {}))
        unknown = sorted(set(s) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"hydra.sweeper.{unknown[0]}", s[unknown[0]], "not a setting of the zoom sweeper")
        return cls(**s)


def _tracking(raw: Mapping[str, Any]) -> TrackingSettings:
    uri = raw.get("uri")
    if uri is not None and (not isinstance(uri, str) or not uri.strip()):
        raise ConfigError("hydra.sweeper.tracking.uri", uri, "must be a tracking URI or null (no MLflow)")
    experiment = raw.get("experiment") or "zoom"
    if not isinstance(experiment, str) or not experiment.strip():
        raise ConfigError("hydra.sweeper.tracking.experiment", experiment, "must be a non-empty name")
    keys = raw.get("trial_keys")
    if keys is not None:
        unknown = sorted(set(keys) - set(TRIAL_KEYS))
        if unknown:
            raise ConfigError(f"hydra.sweeper.tracking.trial_keys.{unknown[0]}", keys[unknown[0]],
                              f"not a lineage key; the keys are {', '.join(TRIAL_KEYS)}")
        keys = {k: v for k, v in keys.items() if v}
    return TrackingSettings(uri, experiment, keys or None)


def _is_number(value: Any) -> bool:
    """A finite int or float (``inf`` and ``nan`` are not settings)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"hydra.sweeper.{name}", value, "must be a positive integer")


def _number_in(name: str, value: Any, low: float, high: float, problem: str, *, low_open: bool = False) -> None:
    if not _is_number(value) or not (low < value <= high if low_open else low <= value <= high):
        raise ConfigError(f"hydra.sweeper.{name}", value, problem)
