"""``sampler=random``: independent uniform draws in each dimension's scale (linear unless tagged)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.search.space import Dimension, Interval, SearchSpace, discrete_values
from pipeline.search.trial import Trial
from plugins.samplers.base import Sampler


class RandomSampler(Sampler):
    """Uniform random search; untagged intervals are sampled on a linear scale."""

    def sample(self, space: SearchSpace, n: int, *, stream: tuple[int, ...] = (),
               history: Sequence[Trial] = ()) -> list[dict[str, Any]]:
        rng = self.rng(*stream)
        columns = {dim.key: self._draw(dim, n, rng) for dim in space.dims}
        return [{key: column[i] for key, column in columns.items()} for i in range(n)]

    def _draw(self, dim: Dimension, n: int, rng: np.random.Generator) -> list[Any]:
        if isinstance(dim, Interval):
            return self.values(dim, rng.random(n))
        values = discrete_values(dim)  # an index per trial (the stream results were pinned with)
        return [values[i] for i in rng.integers(0, len(values), n)]
