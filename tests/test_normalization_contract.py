"""The normalization plugin contract (pipeline.testing.normalization, the suite shipped for plugin
authors) over every YAML in ``conf/normalization/``: a new plugin (one Python file + one YAML)
is covered by dropping in its two files. ``PIPELINE_NORMALIZATION_DIR`` points it elsewhere."""

from pipeline.testing.normalization import *  # noqa: F403 - the suite's tests and fixture, collected here
