"""``sampler=sobol``: quasi-random (low-discrepancy) search with scipy's scrambled Sobol sequence.

Each trial is a point of a d-dimensional Sobol sequence in [0, 1)^d, mapped per dimension like
the other samplers: an interval through its scale (log for untagged positive intervals, as
``log_random``; a tag wins), a choice or range by slicing [0, 1) into equal parts. Points cover
the space more evenly than independent draws, which matters for small budgets. A worked example
of the sampler contract: this file plus ``conf/sampler/sobol.yaml``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.search.space import SearchSpace
from pipeline.search.trial import Trial
from plugins.samplers.base import Sampler


class SobolSampler(Sampler):
    """Scrambled Sobol points (scipy.stats.qmc), seeded per (seed, combination, round)."""

    default_scale = "log"

    def sample(self, space: SearchSpace, n: int, *, stream: tuple[int, ...] = (),
               history: Sequence[Trial] = ()) -> list[dict[str, Any]]:
        from scipy.stats import qmc

        d = len(space.dims)
        engine = qmc.Sobol(d=max(d, 1), scramble=True, seed=self.rng(*stream))
        m = int(np.ceil(np.log2(max(n, 1))))
        u = engine.random_base2(m)[:n]  # a power-of-two prefix keeps the balance properties
        columns = {dim.key: self.values(dim, u[:, j])
                   for j, dim in enumerate(space.dims)}
        return [{key: column[i] for key, column in columns.items()} for i in range(n)]
