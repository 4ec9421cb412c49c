"""Normalization plugins for hidden layers. The contract is :class:`base.Normalization`."""

from plugins.normalization.base import Normalization

__all__ = ["Normalization"]
