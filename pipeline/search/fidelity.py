"""Coarse to fine in the budget each trial gets: ``hydra.sweeper.fidelity`` -> rungs of
successive halving, each rung one round of the zoom loop.

With ``key`` set (this app: ``trainer.epochs``) a sweep runs ``K`` rungs at fidelities rising by
``eta`` up to ``max``: ``f_k = max / eta^(K-1-k)`` for ``K = floor(log_eta(max / min)) + 1``
(rounded to integers when ``min`` and ``max`` are; e.g. min 2, max 20, eta 3 -> 2, 7, 20).

Rung 0 starts ``M`` new configurations at ``f_0``. After rung ``k`` the best ``floor(m_k / eta)``
(at least one) of its trials are promoted to rung ``k+1`` and continue training (from their
checkpoint when the app takes ``resume_key``, else from scratch), and as many **new**
configurations start there, proposed by the sampler in the space zoomed after rung ``k``: half of
every later rung is new. Why half: the promoted trials carry what the cheap rung learned, the new
ones test the zoomed region at the higher fidelity, so a ranking that a low fidelity gets wrong
(a large learning rate that looks good after two epochs) is not the only source of the last rung.

``n_trials`` counts configurations started (``M`` plus the new ones of later rungs);
``hydra.sweeper.budget`` caps the fidelity spent in all (epochs here): a continued trial costs
``f_k - f_(k-1)``, a new one or one retrained from scratch ``f_k``. ``M`` is the largest that
meets both; :meth:`RungPlan.describe` says which one binds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.errors import ConfigError
from pipeline.search.schedule import Schedule


@dataclass(frozen=True)
class Fidelity:
    """``hydra.sweeper.fidelity``: ``key`` null = off (every trial at the task's own budget).
    The defaults are the sweeper's (pipeline.sweep.config reads them from here)."""

    key: str | None = None
    min: float | None = None
    max: float | None = None
    eta: int = 3
    resume_key: str | None = None

    @property
    def on(self) -> bool:
        return self.key is not None

    @property
    def unit(self) -> str:
        """What a fidelity counts, for messages: the key's last part (``epochs``)."""
        return (self.key or "fidelity").rsplit(".", 1)[-1]

    @property
    def climbs(self) -> bool:
        """More than one rung: ``max / min >= eta``. Below that (e.g. this app with
        ``trainer.epochs=3``) there is nothing to climb and the sweep runs plain rounds."""
        return self.on and len(self.levels()) > 1

    def levels(self) -> tuple[float, ...]:
        """The rungs' fidelities, lowest first (only ``max`` when ``max / min < eta``)."""
        assert self.min is not None and self.max is not None
        if self.max <= self.min:
            return (self.max,)
        k = int(math.floor(math.log(self.max / self.min) / math.log(self.eta) + 1e-9)) + 1
        raw = [self.max / self.eta ** (k - 1 - i) for i in range(k)]
        if isinstance(self.min, int) and isinstance(self.max, int):
            out: list[float] = []
            for f in raw:  # rounded, and still strictly rising
                value = max(int(round(f)), self.min)
                if not out or value > out[-1]:
                    out.append(value)
            return tuple(out)
        return tuple(raw)

    def __post_init__(self) -> None:
        """A value out of its range is a :class:`ConfigError` naming the setting."""
        for name in ("key", "resume_key"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigError(f"hydra.sweeper.fidelity.{name}", value, "must be a dotted config key or null")
        if not self.on:
            return
        for name in ("min", "max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= 0:
                raise ConfigError(f"hydra.sweeper.fidelity.{name}", value,
                                  f"must be a positive number: the {'least' if name == 'min' else 'most'} "
                                  f"{self.key} a trial gets (fidelity.key={self.key})")
        if isinstance(self.eta, bool) or not isinstance(self.eta, int) or self.eta < 2:
            raise ConfigError("hydra.sweeper.fidelity.eta", self.eta, "must be an integer >= 2")

    def why_flat(self) -> str:
        """Why a sweep with ``key`` set runs plain rounds (``not climbs``), for the start line."""
        return (f"fidelity: one rung (max/min = {self.max:g}/{self.min:g} is below eta={self.eta}), so plain "
                f"rounds, every trial at the task's own {self.key}")


@dataclass(frozen=True)
class RungPlan:
    """The rungs of a fidelity sweep: their fidelities, trials promoted into each and trials new
    in each; ``binds`` says which setting limited it."""

    fidelity: Fidelity
    levels: tuple[float, ...]
    promoted: tuple[int, ...]
    new: tuple[int, ...]
    binds: str = "n_trials"

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(p + q for p, q in zip(self.promoted, self.new, strict=True))

    @property
    def started(self) -> int:
        """Configurations started: what ``n_trials`` counts."""
        return sum(self.new)

    @property
    def spent(self) -> float:
        """The fidelity all trials of all rungs train, continuations counted by what they add."""
        total, below = 0.0, 0.0
        for f, p, q in zip(self.levels, self.promoted, self.new, strict=True):
            step = f - below if self.fidelity.resume_key else f
            total += p * step + q * f
            below = f
        return total

    def schedule(self) -> Schedule:
        return Schedule(self.sizes, fidelities=self.levels, promoted=self.promoted)

    def describe(self) -> str:
        unit = self.fidelity.unit
        rungs = "; ".join(f"{_num(f)} {unit}: {q} new" + (f" + {p} promoted" if p else "")
                          for f, p, q in zip(self.levels, self.promoted, self.new, strict=True))
        how = "continued from their checkpoints" if self.fidelity.resume_key else \
            "retrained from scratch (no fidelity.resume_key)"
        return (f"{len(self.levels)} rungs ({rungs}) = {self.started} configurations, {_num(self.spent)} {unit} "
                f"in all ({self.binds} binds); promoted trials {how}")


def _num(x: float) -> str:
    return f"{x:g}"


def rungs(fidelity: Fidelity, first: int) -> RungPlan:
    """The plan with ``first`` new configurations in rung 0."""
    levels = fidelity.levels()
    promoted, new = [0], [first]
    for _ in levels[1:]:
        p = max(1, (promoted[-1] + new[-1]) // fidelity.eta)
        promoted.append(p)
        new.append(p)  # half of every later rung is new (module docstring)
    return RungPlan(fidelity, levels, tuple(promoted), tuple(new))


def plan(fidelity: Fidelity, n_trials: int | None, budget: float | None) -> RungPlan:
    """The largest rung-0 size whose plan starts at most ``n_trials`` configurations and spends at
    most ``budget``; :class:`ConfigError` when not even one configuration fits."""
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float))
                               or not math.isfinite(budget) or budget <= 0):
        raise ConfigError("hydra.sweeper.budget", budget, f"must be a positive number of {fidelity.unit} (or null)")
    limits = {"n_trials": (n_trials, lambda p: p.started), "budget": (budget, lambda p: p.spent)}
    best: RungPlan | None = None
    binds = "n_trials"
    for name, (limit, measure) in limits.items():
        if limit is None:
            continue
        if measure(rungs(fidelity, 1)) > limit:
            raise ConfigError(f"hydra.sweeper.{name}", limit, f"too small for one configuration through the "
                              f"rungs ({_num(measure(rungs(fidelity, 1)))} needed: {rungs(fidelity, 1).describe()})")
        m = 1
        while measure(rungs(fidelity, m + 1)) <= limit:
            m += 1
        if best is None or m < best.new[0]:
            best, binds = rungs(fidelity, m), name
    assert best is not None, "give n_trials or budget"
    return RungPlan(fidelity, best.levels, best.promoted, best.new, binds)
