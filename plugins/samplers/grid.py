"""``sampler=grid``: a Cartesian grid within the trial budget.

Rule: every value of a ``choice`` and a ``range``; for an interval, ``k`` points at the centres
of ``k`` equal cells of its scale (``low + (i + 1/2) * width / k`` in the uniform space, so no
point sits on an excluded bound), rounded for integers (duplicates removed). The ``k`` of the
intervals grow in turn while the grid still fits in the budget ``n``. When the discrete values
alone exceed the budget, the grid is cut to ``n`` evenly spaced points and the cut is reported
in ``notes`` (and by the sweeper), never silently.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.search.space import Interval, SearchSpace, discrete_values
from pipeline.search.trial import Trial
from plugins.samplers.base import Sampler


class GridSampler(Sampler):
    """Deterministic grid search (the seed and stream are not used)."""

    fills_budget = False

    def axis(self, dim: Interval, k: int) -> list[Any]:
        """``k`` cell centres of ``dim`` in its scale (fewer for a narrow integer interval)."""
        values = self.values(dim, (np.arange(k) + 0.5) / k)
        return list(dict.fromkeys(values)) if dim.integer else values

    def sample(self, space: SearchSpace, n: int, *, stream: tuple[int, ...] = (),
               history: Sequence[Trial] = ()) -> list[dict[str, Any]]:
        intervals = [d for d in space.dims if isinstance(d, Interval)]
        discrete = {d.key: discrete_values(d) for d in space.dims if not isinstance(d, Interval)}
        base = math.prod(len(v) for v in discrete.values())
        k = {d.key: 1 for d in intervals}
        axes = {d.key: self.axis(d, 1) for d in intervals}
        grown = True
        while grown and intervals:
            grown = False
            for d in sorted(intervals, key=lambda d: k[d.key]):
                trial_axis = self.axis(d, k[d.key] + 1)
                size = base * math.prod(len(trial_axis) if key == d.key else len(a) for key, a in axes.items())
                if size <= n and len(trial_axis) > len(axes[d.key]):
                    k[d.key] += 1
                    axes[d.key] = trial_axis
                    grown = True
        columns = {**discrete, **axes}
        keys = [d.key for d in space.dims]
        points = [dict(zip(keys, combo, strict=True))
                  for combo in itertools.product(*(columns[key] for key in keys))]
        if len(points) > n:
            self.notes.append(f"grid of {len(points)} points cut to the budget of {n} (evenly spaced)")
            keep = np.unique(np.linspace(0, len(points) - 1, n).round().astype(int))
            points = [points[i] for i in keep]
        elif len(points) < n:
            self.notes.append(f"grid has {len(points)} points, fewer than the budget of {n}")
        return points
