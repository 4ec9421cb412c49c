"""Coarse to fine: shrink a search space around the best trials.

Two modes, both per dimension and *in the dimension's own scale* (log for log, log(1 - x) for
log1m), so the next space is again a product of intervals, ranges and choices that Hydra's
override grammar can write down:

* ``trust`` (the default): a trust region around the best trial: ``shrink`` times the current
  width, centred on the best value (shifted inside the original bounds). It ignores how the other
  top trials are spread, so it concentrates each round near the incumbent whatever the first
  rounds drew.
* ``span``: the span of the ``top`` trials' values, widened on each side by ``margin`` times the
  current width.

Either way an interval is never narrower than ``min_width`` times the original width (so it never
collapses to a point and always re-validates) and stays inside the original bounds (the span
also inside the current ones); a zoomed interval carries its scale as a tag, the one decided
once from the original interval, so later rounds (and a zoom file run again) sample it alike; float
bounds are rounded outward to 4 significant digits for readable YAML, integer bounds outward to
integers. A range is zoomed the same way on the positions of its ordered values (at least 2
kept); a choice keeps all its values, or with ``narrow_choices`` only those seen among the top
trials (original order). Every round after the first also draws ``explore`` of its trials from
the whole original space (pipeline.search.rounds), so nothing is ruled out for good.

Pure functions: no Hydra, no MLflow, no files.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pipeline.errors import ConfigError
from pipeline.search.space import Choice, Interval, Range, SearchSpace, from_unit, to_unit

MIN_WIDTH = 0.05  # a zoomed interval keeps at least 5% of the original width (in its scale)


class ZoomMode(StrEnum):
    SPAN = "span"
    TRUST = "trust"


MODES = tuple(m.value for m in ZoomMode)


# The policy's settings by the names the sweeper gives them (hydra.sweeper.<name>), in order.
SETTINGS = ("zoom", "top_k", "top_fraction", "margin", "shrink", "min_width", "explore", "narrow_choices")


@dataclass(frozen=True)
class ZoomPolicy:
    """How a round's space follows from the trials so far: onto the ``top_k`` best (or
    ``top_fraction`` of a round's budget), by ``mode`` (see the module docstring). These defaults
    are the sweeper's (``hydra.sweeper.zoom``, ``shrink``, ...: pipeline.sweep.config reads them
    from here); a value out of its range is a :class:`ConfigError` naming the setting."""

    mode: ZoomMode = ZoomMode.TRUST  # the default measured best (docs/performance.md)
    top_k: int | None = None
    top_fraction: float = 0.25
    margin: float = 0.1
    shrink: float = 0.6
    min_width: float = MIN_WIDTH
    # Every round after the first draws max(1, round(explore x its size)) trials uniformly from
    # the whole original space: no region or choice value is ever ruled out (docs/zoom.md).
    explore: float = 0.125
    # Whether a choice keeps only the values of the top trials (a model-guided sampler re-weights
    # choices itself; narrowing them is an irreversible decision on one round's luck).
    narrow_choices: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError("hydra.sweeper.zoom", self.mode, f"must be one of {', '.join(MODES)}")
        object.__setattr__(self, "mode", ZoomMode(self.mode))
        if self.top_k is not None and (isinstance(self.top_k, bool) or not isinstance(self.top_k, int)
                                       or self.top_k <= 0):
            raise ConfigError("hydra.sweeper.top_k", self.top_k, "must be a positive integer")
        for name in ("top_fraction", "shrink", "min_width"):
            if not _number(getattr(self, name)) or not 0 < getattr(self, name) <= 1:
                raise ConfigError(f"hydra.sweeper.{name}", getattr(self, name), "must be in (0, 1]")
        if not _number(self.explore) or not 0 <= self.explore < 1:
            raise ConfigError("hydra.sweeper.explore", self.explore, "must be in [0, 1)")
        if not isinstance(self.narrow_choices, bool):
            raise ConfigError("hydra.sweeper.narrow_choices", self.narrow_choices, "must be true or false")
        if not _number(self.margin) or not self.margin >= 0:
            raise ConfigError("hydra.sweeper.margin", self.margin, "must be >= 0")

    def as_params(self, trials_per_round: int | None = None) -> dict[str, Any]:
        """The policy as the sweeper's settings, ``{name: value}`` in the order of
        :data:`SETTINGS` (the sweep's MLflow params). With ``trials_per_round`` the top count is
        resolved, as a results file records it: ``top_k`` is the number of trials the zoom used
        and ``top_fraction`` is left out. :meth:`from_params` reads either back."""
        values = {"zoom": self.mode.value, "top_k": self.top_k, "top_fraction": self.top_fraction,
                  "margin": self.margin, "shrink": self.shrink, "min_width": self.min_width,
                  "explore": self.explore, "narrow_choices": self.narrow_choices}
        if trials_per_round is not None:
            values["top_k"] = self.top_count(trials_per_round)
            del values["top_fraction"]
        return values

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ZoomPolicy:
        """The policy of :meth:`as_params`' mapping (any other keys ignored); a setting left out
        takes its default."""
        known = {k: params[k] for k in SETTINGS if k in params}
        if "zoom" in known:
            known["mode"] = known.pop("zoom")
        return cls(**known)

    def explore_count(self, r: int, size: int) -> int:
        """How many of round ``r``'s ``size`` trials are drawn from the whole original space."""
        if r == 1 or self.explore == 0:
            return 0
        return min(size, max(1, round(self.explore * size)))

    def top_count(self, trials_per_round: int) -> int:
        """How many of the best trials so far define the next round's space."""
        if self.top_k:
            return self.top_k
        return max(1, math.ceil(self.top_fraction * trials_per_round))

    def describe(self, trials_per_round: int) -> str:
        k = self.top_count(trials_per_round)
        choices = f"choices narrowed to the top {k}'s values" if self.narrow_choices else "choices kept"
        if self.mode is ZoomMode.TRUST:
            zoom = f"zoom: trust region of {self.shrink} x the width around the best, {choices}"
        else:
            zoom = f"zoom onto the span of the top {k} with margin {self.margin}, {choices}"
        wide = self.explore_count(2, trials_per_round)
        if wide:
            zoom += f"; {wide} of each later round drawn from the whole original space"
        return zoom


def _number(value: Any) -> bool:
    """A finite int or float (``inf`` and ``nan`` are not settings; neither is a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def zoom(space: SearchSpace, original: SearchSpace, top: Sequence[Mapping[str, Any]], *, policy: ZoomPolicy,
         scale_of: Callable[[Interval], str]) -> SearchSpace:
    """The space for the next round: ``space`` narrowed around the ``top`` trials' params (best
    first; the ``trust`` mode centres on ``top[0]``) as ``policy`` says, each interval in the
    scale ``scale_of`` gives its ``original`` dimension."""
    if not top:
        return space
    margin, min_width, shrink = policy.margin, policy.min_width, policy.shrink
    trust = shrink if policy.mode is ZoomMode.TRUST else None
    dims = []
    for dim in space.dims:
        first = original.dim(dim.key)
        values = [t[dim.key] for t in top]
        if isinstance(dim, Interval):
            assert isinstance(first, Interval)
            dims.append(_zoom_interval(dim, first, values, margin, scale_of(first), min_width, trust))
        elif isinstance(dim, Range):
            assert isinstance(first, Range)
            dims.append(_zoom_range(dim, first, values, margin, min_width, trust))
        elif not policy.narrow_choices:
            dims.append(dim)
        else:
            seen = {str(v) for v in values}
            dims.append(Choice(dim.key, tuple(v for v in dim.values if v in seen) or dim.values,
                               dim.override_key))
    return space.with_dims(dims)


def _zoom_interval(dim: Interval, first: Interval, values: Sequence[float], margin: float,
                   scale: str, min_width: float, shrink: float | None = None) -> Interval:
    """``shrink`` set: trust mode around ``values[0]``; else the span of ``values`` + margin."""
    def unit(x: float) -> float:
        return float(to_unit(scale, x))

    o_lo, o_hi = sorted((unit(first.low), unit(first.high)))
    c_lo, c_hi = sorted((unit(dim.low), unit(dim.high)))
    ts = [unit(v) for v in values]
    if shrink is None:  # never wider than the current interval: each round shrinks the space
        pad = margin * (c_hi - c_lo)
        lo, hi = max(min(ts) - pad, c_lo), min(max(ts) + pad, c_hi)
    else:
        width = shrink * (c_hi - c_lo)
        lo = min(max(ts[0] - width / 2, o_lo), o_hi - width)  # centred, shifted off a bound
        hi = lo + width
    lo, hi = max(lo, o_lo), min(hi, o_hi)  # clip to the original bounds
    floor_width = min_width * (o_hi - o_lo)
    if hi - lo < floor_width:  # widen around the centre, shifted off an original bound
        centre = min(max((lo + hi) / 2, o_lo + floor_width / 2), o_hi - floor_width / 2)
        lo, hi = centre - floor_width / 2, centre + floor_width / 2
    x_lo, x_hi = sorted((float(from_unit(scale, lo)), float(from_unit(scale, hi))))
    if dim.integer:
        new_lo, new_hi = math.floor(x_lo + 1e-9), math.ceil(x_hi - 1e-9)
        new_lo, new_hi = max(int(first.low), new_lo), min(int(first.high), new_hi)
        if new_hi <= new_lo:  # keep at least two integers
            new_hi = min(int(first.high), new_lo + 1)
            new_lo = max(int(first.low), new_hi - 1)
        return Interval(dim.key, new_lo, new_hi, True, scale, dim.override_key)
    if scale == "log1m":  # keep the digits that matter near 1: round 1 - x
        new_lo = _clean(1.0 - _round_sig(1.0 - x_lo, down=False))
        new_hi = _clean(1.0 - _round_sig(1.0 - x_hi, down=True))
    else:
        new_lo, new_hi = _round_sig(x_lo, down=True), _round_sig(x_hi, down=False)
    new_lo, new_hi = max(first.low, new_lo), min(first.high, new_hi)
    return Interval(dim.key, new_lo, new_hi, False, scale, dim.override_key)


def _zoom_range(dim: Range, first: Range, values: Sequence[float], margin: float, min_width: float,
                shrink: float | None = None) -> Range:
    grid = first.values
    current = dim.values

    pos = [first.position(v) for v in values]
    if shrink is None:
        pad = math.ceil(margin * len(current))
        lo, hi = min(pos) - pad, max(pos) + pad
    else:  # trust: shrink x the current count of values, centred on the best
        keep = max(1, math.ceil(shrink * len(current)))
        lo = min(max(pos[0] - (keep - 1) // 2, 0), max(0, len(grid) - keep))
        hi = lo + keep - 1
    need = max(2, math.ceil(min_width * len(grid)))
    while hi - lo + 1 < need:
        lo, hi = lo - 1, hi + 1
    lo, hi = max(0, lo), min(len(grid) - 1, hi)
    if hi - lo + 1 < need:  # pinned at an end: extend the other way
        lo, hi = (0, min(len(grid) - 1, need - 1)) if lo == 0 else (max(0, len(grid) - need), hi)
    start, stop = grid[lo], grid[hi] + first.step
    if first.integer:
        start, stop = int(start), int(stop)
    else:
        start, stop = _round_sig(start, digits=12), _round_sig(stop, digits=12)
    return Range(dim.key, start, stop, first.step, dim.override_key)


def _round_sig(x: float, *, down: bool = True, digits: int = 4) -> float:
    """Round ``x`` to ``digits`` significant digits, toward -inf (down) or +inf."""
    if x == 0 or not math.isfinite(x):
        return x
    exponent = math.floor(math.log10(abs(x))) - digits + 1
    step = 10.0 ** exponent
    q = x / step
    q = math.floor(q + 1e-9) if down else math.ceil(q - 1e-9)
    return float(f"{q * step:.{digits + 2}g}")


def _clean(x: float) -> float:
    return float(f"{x:.12g}")


def space_text(space: SearchSpace, *, header: str = "") -> str:
    """The searched dimensions as a config that loads into ``hydra.sweeper.params``."""
    lines = ["# @package hydra.sweeper.params"]
    lines += [f"# {line}" for line in header.splitlines() if line]
    for key, expr in space.as_params().items():
        lines.append(f"{key}: {_yaml_str(expr)}")
    return "\n".join(lines) + "\n"


def _yaml_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def dims_summary(space: SearchSpace, scale_of: Callable[[Interval], str]) -> list[str]:
    """One line per dimension: key, expression and the scale it is sampled in."""
    out = []
    for d in space.dims:
        extra = f"  [{scale_of(d)} scale]" if isinstance(d, Interval) else ""
        out.append(f"{d.key}: {d.expression()}{extra}")
    return out
