"""The sampler plugin contract.

A sampler is one class deriving from :class:`Sampler` plus one YAML in ``conf/sampler/`` naming
it with ``_target_`` (and its ``seed``). The sweeper builds it once per search::

    sampler = hydra.utils.instantiate(cfg.sampler)
    trials = sampler.sample(space, n, stream=(combination, round))

* ``sample`` returns a list of at most ``n`` dicts ``{dimension key: value}`` covering every
  dimension of ``space.dims``: floats for float intervals (in ``[low, high)``), ints for integer
  intervals (in ``[low, high]``) and integer ranges, one of the override strings for ``choice``.
  Samplers whose ``fills_budget`` is true return exactly ``n``.
* Every random draw comes from ``self.rng(*stream)``: the same seed and stream give the same
  trials, so a re-run or a resumed round proposes the same points, while each combination and
  round gets its own independent stream.
* Scale: an interval's explicit tag wins; otherwise :meth:`scale_of` gives the sampler's
  default (``default_scale``; ``"log"`` applies only to intervals with positive bounds).
* ``notes`` collects anything the user should be told (e.g. a grid cut by the budget).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from pipeline.search import Interval, SearchSpace


class Sampler(ABC):
    """Base class of sampler plugins; see the module docstring for the contract."""

    default_scale: ClassVar[str] = "linear"
    fills_budget: ClassVar[bool] = True

    def __init__(self, seed: int = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self.seed = seed
        self.notes: list[str] = []

    @property
    def name(self) -> str:
        return type(self).__name__

    def rng(self, *stream: int) -> np.random.Generator:
        """An independent generator for ``(seed, *stream)``, e.g. ``(combination, round)``."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, *map(int, stream)]))

    def scale_of(self, dim: Interval) -> str:
        """The scale ``dim`` is sampled in: its tag, else this sampler's default."""
        if dim.scale:
            return dim.scale
        if self.default_scale == "log" and dim.low > 0:
            return "log"
        return "linear"

    @abstractmethod
    def sample(self, space: SearchSpace, n: int, *, stream: tuple[int, ...] = ()) -> list[dict[str, Any]]:
        """Propose at most ``n`` trials in ``space``."""

    def __repr__(self) -> str:
        return f"{self.name}(seed={self.seed})"
