"""Sampler plugins: turn a :class:`pipeline.search.space.SearchSpace` into trials.

The contract is :class:`plugins.samplers.base.Sampler`."""

from plugins.samplers.base import Sampler

__all__ = ["Sampler"]
