"""Plugins selected by config group: ``plugins.normalization`` (and, later, samplers)."""
