"""``sampler=random``: independent uniform draws in each dimension's scale (linear unless tagged)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.search import Choice, Dimension, Interval, SearchSpace, from_unit, unit_bounds
from plugins.samplers.base import Sampler


class RandomSampler(Sampler):
    """Uniform random search; untagged intervals are sampled on a linear scale."""

    def sample(self, space: SearchSpace, n: int, *, stream: tuple[int, ...] = ()) -> list[dict[str, Any]]:
        rng = self.rng(*stream)
        columns = {dim.key: self._draw(dim, n, rng) for dim in space.dims}
        return [{key: column[i] for key, column in columns.items()} for i in range(n)]

    def _draw(self, dim: Dimension, n: int, rng: np.random.Generator) -> list[Any]:
        if isinstance(dim, Interval):
            scale = self.scale_of(dim)
            a, b = unit_bounds(dim, scale)
            x = np.asarray(from_unit(scale, rng.uniform(a, b, n)), dtype=float)
            if dim.integer:
                return [int(v) for v in np.clip(np.rint(x), dim.low, dim.high)]
            # [low, high): rounding in exp/expm1 must not reach the excluded upper bound
            x = np.clip(x, dim.low, np.nextafter(dim.high, dim.low))
            return [float(v) for v in x]
        values = list(dim.values) if isinstance(dim, Choice) else dim.values
        return [values[i] for i in rng.integers(0, len(values), n)]
