"""The sampler plugin contract, :class:`pipeline.search.sampler.Sampler` (documented there).

Re-exported here so that plugins keep subclassing ``plugins.samplers.base.Sampler``; the class
itself lives in ``pipeline`` so that the sweep side never imports ``plugins``.
"""

from pipeline.search.sampler import Sampler, propose, sees_history

__all__ = ["Sampler", "propose", "sees_history"]
