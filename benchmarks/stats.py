"""One shape for a measured figure's spread over its repeats, and how the report prints it."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any


def spread(values: Sequence[float]) -> dict[str, Any]:
    """``{"median", "min", "max", "repeats"}`` of the values one figure took over its repeats."""
    vals = [float(v) for v in values]
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "repeats": len(vals)}


def shown(s: dict[str, Any] | None, fmt: Callable[[float], str]) -> str:
    """``median (min-max, n=repeats)``; just the median when it was measured once."""
    if not s:
        return "n/a"
    if s["repeats"] < 2:
        return f"{fmt(s['median'])} (n=1)"
    return f"{fmt(s['median'])} ({fmt(s['min'])}-{fmt(s['max'])}, n={s['repeats']})"
