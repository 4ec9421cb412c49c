"""The normalization plugin contract, :class:`pipeline.normalization.Normalization` (documented
there).

Re-exported here so that plugins keep subclassing ``plugins.normalization.base.Normalization``;
the class itself lives in ``pipeline`` so that the training stage never imports ``plugins``.
"""

from pipeline.train.normalization import Normalization

__all__ = ["Normalization"]
