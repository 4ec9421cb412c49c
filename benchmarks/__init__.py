"""``python -m benchmarks``: every cost of the pipeline measured side by side in one run.

Ratios, not absolute times, are the targets (machines are noisy, +-20% run to run): the full
mode interleaves repeats of each pair and reports medians; ``--quick`` only proves it runs."""

import pipeline  # noqa: F401,E402  (first: it picks OpenBLAS's kernels before numpy loads them, as for users)
