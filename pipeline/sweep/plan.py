"""The plan of a sweep: one search per combination of the crossed values, each composed and
checked before anything is launched (every key exists, every ``choice`` value composes and passes
the app's check, the sampler builds, every interval fits its scale, seeds exist for re-runs).

Composing is the app's business (Hydra's config loader behind ``hydra_plugins``): a plan only
needs a :class:`Composer`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from omegaconf import DictConfig, OmegaConf

from pipeline.errors import ConfigError
from pipeline.registry import build, resolve_callable
from pipeline.search.sampler import Sampler
from pipeline.search.space import Choice, Dimension, Interval, SearchSpace, check_dimension
from pipeline.search.trial import Trial
from pipeline.sweep.config import DEFAULT_SAMPLER
from pipeline.sweep.files import SearchDir, SweepDir
from pipeline.sweep.settings import SweepSettings

_ABSENT = object()


class Composer(Protocol):
    def compose(self, overrides: Sequence[str]) -> tuple[DictConfig, dict[str, str]]:
        """The task config for ``overrides`` and the chosen option per config group; raises
        :class:`ConfigError` when it cannot be composed."""
        ...


@dataclass(frozen=True)
class Search:
    """One combination of the crossed values, ready to search."""

    index: int
    combo: tuple[str, ...]
    base: tuple[str, ...]  # fixed overrides + this combination's crossed values
    space: SearchSpace
    sampler: Sampler
    sampler_name: str
    directory: SearchDir
    crossed: bool
    base_seed: int | None = None  # the task's seed, which seed re-runs vary
    fidelity_key: str | None = None  # hydra.sweeper.fidelity.key

    @property
    def label(self) -> str:
        return " ".join(self.combo) if self.combo else "all"

    def overrides(self, params: dict[str, Any]) -> list[str]:
        """The task overrides of one trial: fixed, crossed, then the searched values."""
        return [*self.base, *self.space.overrides(params)]

    def reproduce(self, trial: Trial) -> list[str]:
        """The overrides that train ``trial`` again in one run (at the fidelity it reached)."""
        out = self.overrides(dict(trial.params))
        if self.fidelity_key is not None and trial.fidelity is not None:
            out.append(f"{self.fidelity_key}={trial.fidelity if isinstance(trial.fidelity, int) else trial.fidelity!r}")
        return out


def make_plan(space: SearchSpace, settings: SweepSettings, composer: Composer, sweep_dir: SweepDir) -> list[Search]:
    """One checked :class:`Search` per combination; raises :class:`ConfigError` on bad input."""
    if not space.dims:
        raise ConfigError("hydra.sweeper.params", {}, "nothing to search: give interval(), choice() or "
                          "range() expressions in hydra.sweeper.params or on the command line")
    check = resolve_callable(settings.check, "hydra.sweeper.check")
    if settings.tracking.on:
        resolve_callable(settings.export, "hydra.sweeper.export")
    elif settings.register_model:
        raise ConfigError("hydra.sweeper.register_model", settings.register_model,
                          "needs MLflow tracking (hydra.sweeper.tracking.uri is null)")
    combos = space.combinations()
    searches = [_search(space, combo, i, len(combos) > 1, settings, composer, check, sweep_dir)
                for i, combo in enumerate(combos)]
    if settings.tracking.on:  # after the app's own check, which names the app's key
        from pipeline.tracking.store import resolve_uri

        resolve_uri(settings.tracking.uri, key="hydra.sweeper.tracking.uri")
    return searches


def _search(space: SearchSpace, combo: list[str], index: int, crossed: bool, settings: SweepSettings,
            composer: Composer, check: Callable[[DictConfig], None] | None, sweep_dir: SweepDir) -> Search:
    base = [*space.fixed, *combo]
    where = f" (combination {' '.join(combo)})" if combo else ""
    first_values = [f"{_key(d)}={_first_value(d)}" for d in space.dims]
    cfg, groups = composer.compose(base)
    for dim in space.dims:
        group = _key(dim).lstrip("+")
        if group in groups and not isinstance(dim, Choice):
            raise ConfigError(dim.key, dim.expression(), f"is a config group{where}: search its options with "
                              f"choice(...), e.g. choice({groups[group]}, ...)")
    for dim in space.dims:
        if not _key(dim).startswith("+") and OmegaConf.select(cfg, dim.key, default=_ABSENT) is _ABSENT:
            raise ConfigError(dim.key, dim.expression(),
                              f"not a key of the composed config{where} (prefix it with + to add it)")
    for dim in space.dims:
        if isinstance(dim, Choice) and len(dim.values) > 1:
            for value in dim.values[1:]:  # a choice may select config-group options, or bad values
                others = [o for o in first_values if not o.startswith(f"{_key(dim)}=")]
                choice_cfg, _ = composer.compose([*base, *others, f"{_key(dim)}={value}"])
                if check is not None:
                    check(choice_cfg)
    if check is not None:  # every dimension at the top of its range at once: the largest network, batch, ...
        check(composer.compose([*base, *(f"{_key(d)}={_last_value(d)}" for d in space.dims)])[0])
    cfg, choices = composer.compose([*base, *first_values])
    if check is not None:
        check(cfg)
    _check_fidelity(settings, space, cfg, where)
    sampler, sampler_name = _sampler(cfg, settings, choices)
    for dim in space.dims:
        if isinstance(dim, Interval):
            check_dimension(dim, sampler.scale_of(dim))
    base_seed = OmegaConf.select(cfg, settings.seed_key, default=None)
    if settings.final_seeds and (isinstance(base_seed, bool) or not isinstance(base_seed, int)):
        raise ConfigError("hydra.sweeper.seed_key", settings.seed_key,
                          "final_seeds re-runs the best trials with other seeds: the task config needs an "
                          f"integer at this key (got {base_seed!r})")
    return Search(index, tuple(combo), tuple(base), space, sampler, sampler_name,
                  sweep_dir.search(index, crossed), crossed, base_seed, settings.fidelity.key)


def _check_fidelity(settings: SweepSettings, space: SearchSpace, cfg: DictConfig, where: str) -> None:
    """The fidelity's keys are keys of the task config, and the budget is not searched."""
    f = settings.fidelity
    if not f.on:
        return
    if any(d.key == f.key for d in space.dims):
        raise ConfigError("hydra.sweeper.fidelity.key", f.key, "is also a searched parameter; the fidelity "
                          "schedule sets it (remove it from the search space, or search it without rungs: "
                          "hydra.sweeper.fidelity.key=null)")
    for name, key in (("key", f.key), ("resume_key", f.resume_key)):
        if key is not None and OmegaConf.select(cfg, key, default=_ABSENT) is _ABSENT:
            raise ConfigError(f"hydra.sweeper.fidelity.{name}", key, f"not a key of the task config{where}")


def _sampler(cfg: DictConfig, settings: SweepSettings, choices: dict[str, str]) -> tuple[Sampler, str]:
    """The task config's ``sampler`` group when it has one, else the sweeper's own."""
    node = cfg.get("sampler")
    if isinstance(node, DictConfig) and node.get("_target_"):
        sampler, key = build(node, "sampler"), "sampler._target_"
    else:
        fallback = settings.sampler or DEFAULT_SAMPLER
        sampler, key = build(fallback, "hydra.sweeper.sampler"), "hydra.sweeper.sampler._target_"
    if not isinstance(sampler, Sampler):
        raise ConfigError(key, type(sampler).__name__, "is not a pipeline.search.sampler.Sampler")
    return sampler, choices.get("sampler") or sampler.name


def _key(dim: Dimension) -> str:
    return dim.override_key or dim.key


def _first_value(dim: Dimension) -> str:
    if isinstance(dim, Interval):
        return str(int(dim.low)) if dim.integer else repr(float(dim.low))
    if isinstance(dim, Choice):
        return dim.values[0]
    return str(dim.values[0])


def _last_value(dim: Dimension) -> str:
    """The largest value a dimension proposes: an integer interval's upper bound, the float just
    below a float interval's (excluded) one, a range's last value, a numeric choice's largest."""
    import math

    if isinstance(dim, Interval):
        return str(int(dim.high)) if dim.integer else repr(math.nextafter(float(dim.high), float(dim.low)))
    values = list(dim.values)
    try:
        return str(max(values, key=float))
    except (TypeError, ValueError):  # not all numbers (e.g. config-group options): each checked on its own
        return str(values[0])


def describe(searches: Sequence[Search], settings: SweepSettings, batch: int | None = None) -> str:
    """The dry run's text: searches, trials, the zoom policy, and each search's space and scales;
    ``batch``: how many trials a model-guided sampler proposes at once (None: whole rounds)."""
    from pipeline.search.zoom import dims_summary

    schedule, objective = settings.schedule, settings.objective
    total = len(searches) * (settings.rungs.started if settings.rungs else schedule.total)
    each = f"{len(searches)} search(es) x " if len(searches) > 1 else ""
    lines = [f"Dry run: {each}{settings.describe_plan(schedule)}" + (f" (each search), {total} in all" if each else "")
             + f"; {settings.policy.describe(schedule.sizes[-1] - schedule.promotions(schedule.rounds))}. "
             "Nothing launched."]  # a rung's explore draws come from its new trials
    for s in searches:
        lines.append(f"\n[{s.label}] sampler {s.sampler!r}{proposes(s.sampler, batch)}, direction "
                     f"{objective.direction.value}" + (f" of {objective.metric}" if objective.metric else ""))
        if s.base:
            lines.append("  fixed: " + " ".join(s.base))
        lines += ["  " + line for line in dims_summary(s.space, s.sampler.scale_of)]
    return "\n".join(lines)


def proposes(sampler: Sampler, batch: int | None) -> str:
    """How the sampler is asked for a round's trials, for the dry run and the log."""
    if not sampler.adaptive:
        return " (whole rounds at once)"
    return " (a whole round at once)" if not batch else f" ({batch} trial{'s' if batch > 1 else ''} at a time)"
