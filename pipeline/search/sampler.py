"""The sampler plugin contract: what a sampler receives and must return.

A sampler is one class deriving from :class:`Sampler` plus one YAML in ``conf/sampler/`` naming
it with ``_target_`` (and its ``seed``). The sweeper builds it once per search and asks it for
each round's trials::

    sampler = hydra.utils.instantiate(cfg.sampler)
    trials = sampler.sample(space, n, stream=(combination, round), history=trials_so_far)

* ``sample`` returns a list of at most ``n`` dicts ``{dimension key: value}`` covering every
  dimension of ``space.dims``: floats for float intervals (in ``[low, high)``), ints for integer
  intervals (in ``[low, high]``) and integer ranges, one of the override strings for ``choice``.
  Samplers whose ``fills_budget`` is true return exactly ``n``.
* ``history`` holds every finished trial of this search so far (:class:`pipeline.search.trial.Trial`:
  ``params``, ``value`` or ``error``, ``round``, ``fidelity``), oldest first, failures included;
  ``history.objective`` (:class:`pipeline.search.objective.History`) says which values are better;
  ``space`` is the region this round samples, which may be narrower than the original space.
  A sampler that does not look at the history may leave the parameter out: samplers written as
  ``sample(space, n, *, stream)`` keep working (:func:`propose` looks at the signature).
* Every random draw comes from ``self.rng(*stream)``: the same seed, stream and history give
  the same trials, so a re-run or a resumed round proposes the same points, while each
  combination and round gets its own independent stream.
* Values come from the one transform :func:`pipeline.search.space.decode` (points of [0, 1) -> the
  dimension's values through its scale), so every sampler treats scales, integer rounding and
  excluded bounds alike.
* Scale: an interval's explicit tag wins; otherwise :meth:`scale_of` gives the sampler's
  default (``default_scale``; ``"log"`` applies only to intervals with positive bounds).
* ``notes`` collects anything the user should be told (e.g. a grid cut by the budget).
* ``adaptive = True`` says the sampler models the history: the sweep then asks it for a round in
  batches as wide as the launcher runs at once (stream ``(combination, round)`` for the first
  batch, ``(combination, round, batch)`` after), each batch seeing the trials before it. Samplers
  that lay out a whole round at once (grid, Sobol) keep the default ``False``.

This module lives in ``pipeline`` so that the sweep side and the plugins both import it and
``pipeline`` never imports ``plugins``; ``plugins.samplers.base`` re-exports it.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from pipeline.search.space import Dimension, Interval, SearchSpace, decode, encode
from pipeline.search.trial import Trial


class Sampler(ABC):
    """Base class of sampler plugins; see the module docstring for the contract."""

    default_scale: ClassVar[str] = "linear"
    fills_budget: ClassVar[bool] = True
    # Proposes from a model of the history: the round loop then asks it a launcher's batch at a
    # time (hydra.sweeper.batch_size), so each proposal sees the trials finished before it.
    adaptive: ClassVar[bool] = False

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

    def values(self, dim: Dimension, u: Any) -> list[Any]:
        """Points ``u`` of [0, 1) as values of ``dim``, in this sampler's scale for it
        (:func:`pipeline.search.space.decode`)."""
        return decode(dim, u, self.scale_of(dim) if isinstance(dim, Interval) else "linear")

    def units(self, dim: Dimension, values: Any) -> Any:
        """Values of ``dim`` as points of [0, 1) in this sampler's scale (the inverse of
        :meth:`values`; :func:`pipeline.search.space.encode`), e.g. to fit a model on the history."""
        return encode(dim, values, self.scale_of(dim) if isinstance(dim, Interval) else "linear")

    @abstractmethod
    def sample(self, space: SearchSpace, n: int, *, stream: tuple[int, ...] = (),
               history: Sequence[Trial] = ()) -> list[dict[str, Any]]:
        """Propose at most ``n`` trials in ``space``, knowing the trials so far."""

    def __repr__(self) -> str:
        return f"{self.name}(seed={self.seed})"


def uniform(space: SearchSpace, n: int, rng: np.random.Generator,
            scale_of: Callable[[Interval], str]) -> list[dict[str, Any]]:
    """``n`` independent uniform draws from ``space``, each interval in ``scale_of`` its scale."""
    columns = {d.key: decode(d, rng.random(n), scale_of(d) if isinstance(d, Interval) else "linear")
               for d in space.dims}
    return [{key: column[i] for key, column in columns.items()} for i in range(n)]


def sees_history(sampler: Any) -> bool:
    """Whether ``sampler.sample`` takes ``history`` (samplers of the older contract do not)."""
    parameters = inspect.signature(sampler.sample).parameters
    return "history" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def propose(sampler: Any, space: SearchSpace, n: int, *, stream: tuple[int, ...],
            history: Sequence[Trial]) -> list[dict[str, Any]]:
    """Ask ``sampler`` for ``n`` trials, passing ``history`` when its ``sample`` takes it."""
    if sees_history(sampler):
        return sampler.sample(space, n, stream=stream, history=history if isinstance(history, tuple) else
                              tuple(history))
    return sampler.sample(space, n, stream=stream)
