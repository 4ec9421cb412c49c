"""``sampler=log_random``: random search with log scale as the default for positive intervals.

For a learning rate in [1e-4, 1], uniform sampling puts 90% of trials in [0.1, 1]; log-uniform
sampling puts 25% in each decade. An explicit ``tag(linear, ...)`` still wins."""

from __future__ import annotations

from plugins.samplers.random import RandomSampler


class LogRandomSampler(RandomSampler):
    """Random search; untagged intervals with bounds > 0 are sampled log-uniformly."""

    default_scale = "log"
