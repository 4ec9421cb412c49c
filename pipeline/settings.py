"""The sweeper's settings (``hydra.sweeper.*``) as one frozen object, checked once.

Built from the ConfigStore dataclass's values (``hydra_plugins/zoom_sweeper/config.py`` documents
each key); every bad value is a :class:`ConfigError` naming ``hydra.sweeper.<key>``. Nothing
else reads the raw settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import ConfigError
from pipeline.objective import Direction, Objective
from pipeline.zoom import ZoomMode, ZoomPolicy

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
    rounds: int = 3
    trials_per_round: int = 16
    policy: ZoomPolicy = ZoomPolicy()
    max_failure_rate: float = 0.5
    dry_run: bool = False
    objective: Objective = Objective()
    sampler: Mapping[str, Any] = field(default_factory=dict)  # fallback sampler node (_target_, seed)
    check: str | None = None
    resume: bool = False
    importance: bool = True
    plots: bool = True
    quiet: bool = False
    final_seeds: int = 0
    final_top: int = 3
    seed_key: str = "seed"
    tracking: TrackingSettings = TrackingSettings()

    @property
    def top_count(self) -> int:
        return self.policy.top_count(self.trials_per_round)

    @classmethod
    def from_config(cls, **raw: Any) -> SweepSettings:
        """Check and freeze the raw ``hydra.sweeper`` values (plain containers, no DictConfig)."""
        s = {k: v for k, v in raw.items() if not k.startswith("_")}
        _positive_int("rounds", s.get("rounds", 3))
        _positive_int("trials_per_round", s.get("trials_per_round", 16))
        top_k = s.get("top_k")
        if top_k is not None:
            _positive_int("top_k", top_k)
            if top_k > s.get("trials_per_round", 16):
                raise ConfigError("hydra.sweeper.top_k", top_k,
                                  f"larger than a round (trials_per_round={s.get('trials_per_round', 16)})")
        _number_in("top_fraction", s.get("top_fraction", 0.25), 0, 1, "must be in (0, 1]", low_open=True)
        zoom = s.get("zoom", "span")
        if zoom not in tuple(ZoomMode):
            raise ConfigError("hydra.sweeper.zoom", zoom, f"must be one of {', '.join(ZoomMode)}")
        margin = s.get("margin", 0.1)
        if not _is_number(margin) or not margin >= 0:
            raise ConfigError("hydra.sweeper.margin", margin, "must be >= 0")
        _number_in("shrink", s.get("shrink", 0.5), 0, 1, "must be in (0, 1]", low_open=True)
        _number_in("min_width", s.get("min_width", 0.05), 0, 1, "must be in (0, 1]", low_open=True)
        _number_in("max_failure_rate", s.get("max_failure_rate", 0.5), 0, 1, "must be in [0, 1]")
        final_seeds = s.get("final_seeds", 0)
        if isinstance(final_seeds, bool) or not isinstance(final_seeds, int) or final_seeds < 0:
            raise ConfigError("hydra.sweeper.final_seeds", final_seeds, "must be an integer >= 0")
        if final_seeds:
            _positive_int("final_top", s.get("final_top", 3))
        direction = s.get("direction", "minimize")
        if direction not in tuple(Direction):
            raise ConfigError("hydra.sweeper.direction", direction, "must be minimize or maximize")
        policy = ZoomPolicy(ZoomMode(zoom), top_k, s.get("top_fraction", 0.25), margin,
                            s.get("shrink", 0.5), s.get("min_width", 0.05))
        return cls(
            params=dict(s.get("params") or {}), rounds=s.get("rounds", 3),
            trials_per_round=s.get("trials_per_round", 16), policy=policy,
            max_failure_rate=s.get("max_failure_rate", 0.5), dry_run=bool(s.get("dry_run", False)),
            objective=Objective(Direction(direction), s.get("metric")), sampler=dict(s.get("sampler") or {}),
            check=s.get("check"), resume=bool(s.get("resume", False)), importance=bool(s.get("importance", True)),
            plots=bool(s.get("plots", True)), quiet=bool(s.get("quiet", False)), final_seeds=final_seeds,
            final_top=s.get("final_top", 3), seed_key=s.get("seed_key", "seed"),
            tracking=_tracking(s.get("tracking") or {}))


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
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"hydra.sweeper.{name}", value, "must be a positive integer")


def _number_in(name: str, value: Any, low: float, high: float, problem: str, *, low_open: bool = False) -> None:
    if not _is_number(value) or not (low < value <= high if low_open else low <= value <= high):
        raise ConfigError(f"hydra.sweeper.{name}", value, problem)
