"""Search spaces written in Hydra's override grammar, parsed by Hydra's own parser.

A space comes from ``hydra.sweeper.params`` (a flat mapping ``dotted.key: expression``, the form
the Optuna and Nevergrad sweepers read) followed by command-line overrides, later entries
replacing earlier ones for the same key:

* ``interval(a, b)`` - a float in [a, b); ``int(interval(a, b))`` - an integer in [a, b]
  (both ends, Optuna's rule). ``tag(log, ...)``, ``tag(log1m, ...)`` or ``tag(linear, ...)``
  fixes the scale; untagged intervals take the sampler's default scale.
* ``choice(a, b, c)`` - one of the values (searched).
* ``range(start, stop, step)`` - the ordered values start, start+step, ... < stop (stop
  excluded, as Python's range).
* ``a,b,c`` (a plain comma list) - *crossed*: every value gets its own complete search.
* anything else - a fixed override passed to every trial.

Scales: ``linear`` samples x uniformly; ``log`` samples log(x) uniformly (bounds > 0);
``log1m`` samples log(1 - x) uniformly (bounds in (0, 1)), for momentum-like values near 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal

from pipeline.errors import ConfigError

Scale = Literal["linear", "log", "log1m"]
SCALES: tuple[str, ...] = ("linear", "log", "log1m")


@dataclass(frozen=True)
class Interval:
    """A continuous (or integer) interval; ``scale`` is the explicit tag, ``None`` if untagged."""

    key: str
    low: float
    high: float
    integer: bool = False
    scale: Scale | None = None
    override_key: str = ""

    def expression(self) -> str:
        fmt = (lambda v: str(int(v))) if self.integer else _fmt
        body = f"interval({fmt(self.low)}, {fmt(self.high)})"
        if self.integer:
            body = f"int({body})"
        return f"tag({self.scale}, {body})" if self.scale else body

    def contains(self, value: float) -> bool:
        if self.integer:
            return self.low <= value <= self.high
        return self.low <= value < self.high


@dataclass(frozen=True)
class Choice:
    """Unordered alternatives, kept as their override strings (``'16'``, ``'batch_norm'``)."""

    key: str
    values: tuple[str, ...]
    override_key: str = ""

    def expression(self) -> str:
        return f"choice({', '.join(self.values)})"

    def contains(self, value: Any) -> bool:
        return str(value) in self.values


@dataclass(frozen=True)
class Range:
    """Ordered numbers ``start, start + step, ...`` below ``stop`` (stop excluded)."""

    key: str
    start: float
    stop: float
    step: float
    override_key: str = ""

    @property
    def integer(self) -> bool:
        return all(isinstance(v, int) for v in (self.start, self.stop, self.step))

    @property
    def values(self) -> list[float]:
        start, stop, step = (Decimal(str(v)) for v in (self.start, self.stop, self.step))
        n = max(0, math.ceil((stop - start) / step))
        conv = int if self.integer else float
        return [conv(start + i * step) for i in range(n)]

    def expression(self) -> str:
        return f"range({_fmt(self.start)}, {_fmt(self.stop)}, step={_fmt(self.step)})"

    def contains(self, value: Any) -> bool:
        return any(math.isclose(float(value), v, rel_tol=1e-12, abs_tol=1e-12) for v in self.values)

    def position(self, value: Any) -> int:
        """The index of the value nearest to ``value``."""
        values = self.values
        return min(range(len(values)), key=lambda i: abs(values[i] - float(value)))


Dimension = Interval | Choice | Range


@dataclass(frozen=True)
class SearchSpace:
    """Searched dimensions, crossed comma lists and fixed overrides, in the order given."""

    dims: tuple[Dimension, ...] = ()
    crossed: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (override key, values)
    fixed: tuple[str, ...] = ()  # whole override strings, e.g. "trainer.epochs=5"
    source: Mapping[str, str] = field(default_factory=dict)  # key -> where it came from

    @property
    def keys(self) -> list[str]:
        return [d.key for d in self.dims]

    def dim(self, key: str) -> Dimension:
        for d in self.dims:
            if d.key == key:
                return d
        raise KeyError(key)

    def with_dims(self, dims: Iterable[Dimension]) -> SearchSpace:
        return replace(self, dims=tuple(dims))

    def combinations(self) -> list[list[str]]:
        """One override list per combination of the crossed values (``[[]]`` if none)."""
        combos: list[list[str]] = [[]]
        for key, values in self.crossed:
            combos = [c + [f"{key}={v}"] for c in combos for v in values]
        return combos

    def as_params(self) -> dict[str, str]:
        """The searched dimensions as a ``hydra.sweeper.params`` mapping."""
        return {d.override_key or d.key: d.expression() for d in self.dims}

    def overrides(self, params: Mapping[str, Any]) -> list[str]:
        """Override strings for one trial's ``params`` (dimension key -> value)."""
        out = []
        for d in self.dims:
            value = params[d.key]
            out.append(f"{d.override_key or d.key}={_override_value(d, value)}")
        return out


def quote(text: str) -> str:
    """A Hydra override value that stays one string whatever it holds (a path, a URI)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fmt(value: float) -> str:
    """Shortest text that reads back as the same number (``1e-4`` -> ``0.0001``)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e15):
        return str(int(value)) if isinstance(value, int) else f"{value:.1f}"
    return repr(float(value))


def _override_value(dim: Dimension, value: Any) -> str:
    if isinstance(dim, Choice):
        return str(value)
    if isinstance(dim, Interval) and dim.integer:
        return str(int(value))
    if isinstance(dim, Range) and dim.integer:
        return str(int(value))
    return repr(float(value))


def parse(
    params: Mapping[str, Any] | None = None, arguments: Sequence[str] = (), *, where_params: str = ""
) -> SearchSpace:
    """Build a :class:`SearchSpace` from ``hydra.sweeper.params`` and command-line overrides.

    Nested mappings in ``params`` (from ``+hydra.sweeper.params.model.width=...``) are
    flattened to dotted keys. Raises :class:`ConfigError` naming the key and the expression.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    lines: list[tuple[str, str]] = [(f"{k}={v}", f"hydra.sweeper.params: {k}") for k, v in _flat(params or {})]
    lines += [(a, "command line") for a in arguments]
    entries: dict[str, tuple[Any, str, str]] = {}
    for line, origin in lines:
        key_text, _, value_text = line.partition("=")
        try:
            override = parser.parse_override(line)
        except HydraException as exc:
            reason = str(exc).splitlines()[0].removeprefix("ValueError while evaluating ").strip()
            raise ConfigError(key_text.strip(), value_text, f"cannot parse ({origin}): {reason}") from None
        entries.pop(override.key_or_group, None)  # later entries replace earlier ones, keep order
        entries[override.key_or_group] = (override, origin, value_text.strip())

    dims: list[Dimension] = []
    crossed: list[tuple[str, tuple[str, ...]]] = []
    fixed: list[str] = []
    source: dict[str, str] = {}
    for key, (override, origin, text) in entries.items():
        source[key] = origin
        if not override.is_sweep_override():
            fixed.append(override.input_line or f"{override.get_key_element()}={override.get_value_element_as_str()}")
            continue
        dims_or_crossed = _dimension(override, key, text)
        if isinstance(dims_or_crossed, tuple):
            crossed.append(dims_or_crossed)
        else:
            dims.append(dims_or_crossed)
    space = SearchSpace(tuple(dims), tuple(crossed), tuple(fixed), source)
    for dim in space.dims:
        check_dimension(dim)
    return space


def _flat(params: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for k, v in params.items():
        if isinstance(v, Mapping):
            yield from _flat(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _dimension(override: Any, key: str, text: str) -> Dimension | tuple[str, tuple[str, ...]]:
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

    value = override.value()
    okey = override.get_key_element()
    if isinstance(value, ChoiceSweep):
        values = tuple(override.sweep_string_iterator())
        if value.simple_form:
            return okey, values
        if not values:
            raise ConfigError(key, text, "empty choice()")
        return Choice(key, values, okey)
    if isinstance(value, RangeSweep):
        if value.shuffle:
            return Choice(key, tuple(override.sweep_string_iterator()), okey)
        rng = Range(key, value.start, value.stop, value.step, okey)
        if not rng.values:
            raise ConfigError(key, text, "empty range (stop is excluded; is start >= stop?)")
        return rng
    if isinstance(value, IntervalSweep):
        tags = set(value.tags or ())
        scales = tags & set(SCALES)
        unknown = tags - set(SCALES)
        if unknown:
            raise ConfigError(key, text, f"unknown tag(s) {sorted(unknown)}; scale tags are {list(SCALES)}")
        if len(scales) > 1:
            raise ConfigError(key, text, f"conflicting scale tags {sorted(scales)}")
        integer = isinstance(value.start, int) and isinstance(value.end, int)
        scale = next(iter(scales)) if scales else None
        return Interval(key, value.start, value.end, integer, scale, okey)  # type: ignore[arg-type]
    raise ConfigError(key, text, "unsupported sweep (use interval, choice, range or a comma list)")


def check_dimension(dim: Dimension, scale: str | None = None) -> None:
    """Raise :class:`ConfigError` when ``dim`` cannot be sampled in ``scale`` (default: its tag)."""
    if not isinstance(dim, Interval):
        return
    text = dim.expression()
    if dim.integer and dim.low > dim.high or not dim.integer and not dim.low < dim.high:
        kind = "reversed" if dim.low > dim.high else "empty"
        raise ConfigError(dim.key, text, f"{kind} interval: the lower bound must be below the upper bound")
    if dim.integer and dim.low == dim.high:
        raise ConfigError(dim.key, text, "interval holds a single integer; use a fixed value instead")
    scale = scale or dim.scale or "linear"
    if scale == "log" and dim.low <= 0:
        raise ConfigError(dim.key, text, "log scale needs bounds > 0")
    if scale == "log1m":
        if dim.integer:
            raise ConfigError(dim.key, text, "log1m is for floats in (0, 1), not integers")
        if not (0 < dim.low and dim.high < 1):
            raise ConfigError(dim.key, text, "log1m scale needs bounds inside (0, 1)")


# --- scales -----------------------------------------------------------------------------------

def to_unit(scale: str, x: Any) -> Any:
    """Map values into the space where ``scale`` is uniform (works on floats and arrays)."""
    import numpy as np

    if scale == "log":
        return np.log(x)
    if scale == "log1m":
        return np.log1p(-np.asarray(x, dtype=float))
    return x


def from_unit(scale: str, t: Any) -> Any:
    import numpy as np

    if scale == "log":
        return np.exp(t)
    if scale == "log1m":
        return -np.expm1(t)
    return t


def discrete_values(dim: Choice | Range) -> list[Any]:
    """The values of a choice (override strings) or range (numbers), in order."""
    return list(dim.values) if isinstance(dim, Choice) else dim.values


def decode(dim: Dimension, u: Any, scale: str = "linear") -> list[Any]:
    """The one transform every sampler uses: points ``u`` of [0, 1) -> values of ``dim``.

    An interval maps ``u`` linearly onto its bounds in ``scale`` (widened by half a unit for
    integers, see :func:`unit_bounds`), back through the scale, then into its bounds: rounded
    for integers, below the excluded upper bound for floats (``exp``/``expm1`` may round onto
    it). A choice or range cuts [0, 1) into equal parts, one per value.
    """
    import numpy as np

    u = np.asarray(u, dtype=float)
    if isinstance(dim, Interval):
        a, b = unit_bounds(dim, scale)
        x = np.asarray(from_unit(scale, a + u * (b - a)), dtype=float)
        if dim.integer:
            return [int(v) for v in np.clip(np.rint(x), dim.low, dim.high)]
        return [float(v) for v in np.clip(x, dim.low, np.nextafter(dim.high, dim.low))]
    values = discrete_values(dim)
    picks = np.minimum((u * len(values)).astype(int), len(values) - 1)
    return [values[i] for i in picks]


def encode(dim: Dimension, values: Any, scale: str = "linear") -> Any:
    """The inverse of :func:`decode`: values of ``dim`` -> points of [0, 1) (a choice's or range's
    value -> the middle of its part; a value outside the interval -> outside [0, 1))."""
    import numpy as np

    if isinstance(dim, Interval):
        a, b = unit_bounds(dim, scale)
        return (np.asarray(to_unit(scale, np.asarray(values, dtype=float)), dtype=float) - a) / (b - a)
    if isinstance(dim, Choice):
        index = [dim.values.index(str(v)) for v in values]
    else:
        index = [dim.position(v) for v in values]
    return (np.asarray(index, dtype=float) + 0.5) / len(discrete_values(dim))


def unit_bounds(dim: Interval, scale: str) -> tuple[float, float]:
    """The interval's bounds in its uniform space, ordered low <= high. Integers are widened by
    half a unit on each side so that, after rounding, every integer gets an equal share."""
    lo, hi = (dim.low - 0.5, dim.high + 0.5) if dim.integer else (dim.low, dim.high)
    a, b = float(to_unit(scale, lo)), float(to_unit(scale, hi))
    return (a, b) if a <= b else (b, a)
