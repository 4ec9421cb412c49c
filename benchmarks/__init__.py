"""``python -m benchmarks``: every cost of the pipeline measured side by side in one run.

Ratios, not absolute times, are the targets (machines are noisy, +-20% run to run): the full
mode interleaves repeats of each pair and reports medians; ``--quick`` only proves it runs."""

from pipeline.app.blas import choose_openblas_kernels
from pipeline.app.resolvers import register

choose_openblas_kernels()  # first, as python -m pipeline does: before numpy loads OpenBLAS
register()  # the schema and resolver conf/config.yaml composes with
