"""Contract suites a plugin author runs against their own plugin, as ``optuna.testing`` ships
Optuna's: one command, no clone of this project's tests needed (pytest: the dev extra)::

    python -m pipeline.testing normalization my_norm.yaml      # or a folder of YAMLs
    python -m pipeline.testing sampler conf/sampler/my_sampler.yaml

Each YAML names its plugin with ``_target_``; the plugin's Python file must be importable (in
the current directory, or on ``PYTHONPATH``). With no YAML the suites check this project's own
plugins (``conf/normalization``, ``conf/sampler``). The suites are pytest modules
(pipeline.testing.normalization, pipeline.testing.sampler); the YAMLs under test come from
``PIPELINE_NORMALIZATION_DIR`` / ``PIPELINE_SAMPLER_DIR`` (files or folders, separated by
``os.pathsep``), which the command sets."""

from __future__ import annotations

import os
from pathlib import Path

GROUPS = {"normalization": "PIPELINE_NORMALIZATION_DIR", "sampler": "PIPELINE_SAMPLER_DIR"}


def configs(group: str) -> list[Path]:
    """The YAMLs under test for ``group``: those the environment names, else the shipped ones."""
    from pipeline.app.conf import CONF_DIR

    given = os.environ.get(GROUPS[group])
    places = [Path(p) for p in given.split(os.pathsep) if p] if given else [CONF_DIR / group]
    out: list[Path] = []
    for place in places:
        out += sorted(place.glob("*.yaml")) if place.is_dir() else [place]
    return out


def shipped(group: str) -> bool:
    """Whether the suite checks this project's own plugins (no YAML given)."""
    return not os.environ.get(GROUPS[group])
