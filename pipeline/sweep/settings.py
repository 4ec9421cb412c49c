"""The sweeper's settings (``hydra.sweeper.*``) as one frozen object, checked once.

Built from the values Hydra composed from pipeline.sweep.config (the one source of every
setting's name, type, default, check and help); every bad value is a :class:`ConfigError` naming
``hydra.sweeper.<key>``. Here: the checks that involve more than one setting (the budget, its
rounds or rungs, what needs what), and the engine's objects made from the values. Nothing else
reads the raw settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.errors import ConfigError
from pipeline.search.fidelity import Fidelity, RungPlan
from pipeline.search.fidelity import plan as plan_rungs
from pipeline.search.objective import Direction, Objective
from pipeline.search.schedule import DEFAULT_N_TRIALS, Schedule
from pipeline.search.zoom import ZoomPolicy
from pipeline.sweep import config
from pipeline.sweep.config import TRIAL_KEYS

UNKNOWN = {"": "not a setting of the zoom sweeper",
           "fidelity": "not a fidelity setting (key, min, max, eta, resume_key)",
           "tracking": "not a tracking setting (uri, experiment, trial_keys)"}


@dataclass(frozen=True)
class TrackingSettings:
    """Where the sweep's MLflow runs go. ``uri`` null: no sweeper-side MLflow at all. With
    ``trial_keys`` (this app) the sweeper hands each trial its parent run, URI, run name and tags
    through those config keys and the task logs its own run; without them the sweeper logs one
    child run per trial itself (params, objective, status, round)."""

    uri: str | None
    experiment: str
    trial_keys: Mapping[str, str] | None

    @property
    def on(self) -> bool:
        return self.uri is not None


@dataclass(frozen=True)
class Budget:
    """What ``n_trials``, ``rounds``, ``trials_per_round``, ``fidelity`` and ``budget`` make: the
    rounds (or rungs) of one search."""

    schedule: Schedule
    fidelity: Fidelity
    rungs: RungPlan | None  # the fidelity schedule (fidelity.key set): its rounds are the rungs
    flat: str | None  # why a sweep with fidelity.key set has one rung and runs plain rounds


@dataclass(frozen=True)
class SweepSettings:
    """Every setting, checked; the defaults are pipeline.sweep.config's, filled in by
    :meth:`from_config` (the only way to make one)."""

    params: Mapping[str, Any]
    schedule: Schedule
    fidelity: Fidelity
    rungs: RungPlan | None
    flat: str | None
    timeout_s: float | None  # no trial starts after this many seconds of the sweep
    batch_size: int | None  # an adaptive sampler's proposals at once (None: the launcher's width)
    policy: ZoomPolicy
    max_failure_rate: float
    dry_run: bool
    objective: Objective
    sampler: Mapping[str, Any]  # fallback sampler node (_target_, seed)
    check: str | None
    export: str | None  # dotted callable(job_dir, run_id, tracking_uri) -> model URI
    register_model: str | None  # a registered model name for what export logged
    resume: bool
    importance: bool
    plots: bool
    quiet: bool  # only the final report
    verbose: bool  # every job's output and the launcher's lines too
    final_seeds: int
    final_top: int
    seed_key: str
    tracking: TrackingSettings

    def describe_plan(self, schedule: Schedule) -> str:
        """The plan of one search for the dry run and the start line: its rungs, or ``schedule``'s
        rounds (the sweep's, extended on resume) and why a fidelity key gave no rungs."""
        if self.rungs is not None:
            return self.rungs.describe()
        return schedule.describe() + (f" ({self.flat})" if self.flat else "")

    @classmethod
    def from_config(cls, **raw: Any) -> SweepSettings:
        """Check and freeze the raw ``hydra.sweeper`` values (plain containers, no DictConfig);
        keys left out take their defaults (pipeline.sweep.config)."""
        s = _checked({k: v for k, v in raw.items() if not k.startswith("_")})
        policy = ZoomPolicy.from_params(s)  # checks its own settings
        budget = _budget(s)
        _check_together(s, policy, budget.schedule)
        return cls(
            params=dict(s["params"] or {}), schedule=budget.schedule, fidelity=budget.fidelity, rungs=budget.rungs,
            flat=budget.flat, timeout_s=s["timeout_s"], batch_size=s["batch_size"], policy=policy,
            max_failure_rate=s["max_failure_rate"], dry_run=s["dry_run"],
            objective=Objective(Direction(s["direction"]), s["metric"]), sampler=dict(s["sampler"] or {}),
            check=s["check"], export=s["export"], register_model=s["register_model"], resume=s["resume"],
            importance=s["importance"], plots=s["plots"], quiet=s["quiet"], verbose=s["verbose"],
            final_seeds=s["final_seeds"], final_top=s["final_top"], seed_key=s["seed_key"],
            tracking=_tracking(s["tracking"]))


def _checked(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``raw`` over the defaults (groups merged key by key); an unknown key, or a value its
    setting's check refuses, is a :class:`ConfigError`."""
    s = config.defaults()
    for key, value in raw.items():
        if key not in s:
            raise ConfigError(f"hydra.sweeper.{key}", value, UNKNOWN[""])
        if key in config.GROUPS:
            for sub, v in dict(value or {}).items():
                if sub not in s[key]:
                    raise ConfigError(f"hydra.sweeper.{key}.{sub}", v, UNKNOWN[key])
                s[key][sub] = v
        else:
            s[key] = value
    for name, f in config.fields():
        check = f.metadata.get("check")
        group, _, sub = name.rpartition(".")
        value = s[group][sub] if group else s[name]
        problem = check(value) if check is not None else None
        if problem:
            raise ConfigError(f"hydra.sweeper.{name}", value, problem)
    return s


def _budget(s: Mapping[str, Any]) -> Budget:
    """The rounds (or rungs) of ``n_trials``, ``rounds``, ``trials_per_round``, ``fidelity`` and
    ``budget``, checked together."""
    n_trials, rounds, per_round, spend = s["n_trials"], s["rounds"], s["trials_per_round"], s["budget"]
    fidelity = Fidelity(**s["fidelity"])
    if fidelity.on and not fidelity.climbs:  # nothing to climb: plain rounds, n_trials capped by budget
        flat = fidelity.why_flat()
        if spend is not None:
            plan_rungs(fidelity, None, spend)  # the same check of the value
            n_trials = min(n_trials or DEFAULT_N_TRIALS, max(1, int(spend // fidelity.max)))
        return Budget(_rounds(n_trials, rounds, per_round), Fidelity(), None, flat)
    if not fidelity.on:
        if spend is not None:
            raise ConfigError("hydra.sweeper.budget", spend, "caps the fidelity spent; set hydra.sweeper.fidelity.key "
                              "(e.g. trainer.epochs) or use n_trials")
        return Budget(_rounds(n_trials, rounds, per_round), fidelity, None, None)
    for key, value in (("rounds", rounds), ("trials_per_round", per_round)):
        if value is not None:
            Schedule.plan(None, *((value, 1) if key == "rounds" else (1, value)))  # the value checked first
            raise ConfigError(f"hydra.sweeper.{key}", value, "the rounds of a fidelity sweep are its rungs "
                              "(fidelity.min, max, eta); leave it null, or turn the rungs off with "
                              "hydra.sweeper.fidelity.key=null")
    if n_trials is None and spend is None:
        n_trials = DEFAULT_N_TRIALS
    rungs = plan_rungs(fidelity, n_trials, spend)
    return Budget(rungs.schedule(), fidelity, rungs, None)


def _rounds(n_trials: int | None, rounds: int | None, per_round: int | None) -> Schedule:
    """Plain rounds: the settings' split, or the rule's for the default number of trials."""
    if (n_trials, rounds, per_round) == (None, None, None):
        return Schedule.plan(DEFAULT_N_TRIALS)
    return Schedule.plan(n_trials, rounds, per_round)


def _check_together(s: Mapping[str, Any], policy: ZoomPolicy, schedule: Schedule) -> None:
    """The checks that involve more than one setting."""
    if policy.top_k is not None and policy.top_k > min(schedule.sizes):
        raise ConfigError("hydra.sweeper.top_k", policy.top_k, f"larger than a round ({schedule.describe()})")
    if s["final_seeds"]:
        problem = config.positive_int(s["final_top"])
        if problem:
            raise ConfigError("hydra.sweeper.final_top", s["final_top"], problem)
    if s["register_model"] is not None and not s["export"]:
        raise ConfigError("hydra.sweeper.register_model", s["register_model"], "needs a model to register: "
                          "set hydra.sweeper.export to a function that logs the best trial's model")
    if s["quiet"] is True and s["verbose"] is True:
        raise ConfigError("hydra.sweeper.verbose", True, "cannot be combined with hydra.sweeper.quiet=true")


def _tracking(raw: Mapping[str, Any]) -> TrackingSettings:
    keys = raw.get("trial_keys")
    if keys is not None:
        unknown = sorted(set(keys) - set(TRIAL_KEYS))
        if unknown:
            raise ConfigError(f"hydra.sweeper.tracking.trial_keys.{unknown[0]}", keys[unknown[0]],
                              f"not a lineage key; the keys are {', '.join(TRIAL_KEYS)}")
        keys = {k: v for k, v in keys.items() if v}
    return TrackingSettings(raw.get("uri"), raw.get("experiment"), keys or None)
