"""The entry point (``python -m pipeline``, the ``pipeline`` command) picks OpenBLAS's Haswell
kernels on Zen 4 before numpy loads, and only then; ``import pipeline`` alone changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipeline.app import blas

PROBE = """
import json, os, sys
{first}
import numpy
from threadpoolctl import threadpool_info
arch = [i.get("architecture") for i in threadpool_info() if i.get("internal_api") == "openblas"]
print(json.dumps({{"env": os.environ.get("OPENBLAS_CORETYPE"), "arch": arch}}))
"""


def _probe(first: str, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "PIPELINE_BLAS_TUNING")}
    out = subprocess.run([sys.executable, "-c", PROBE.format(first=first)], env={**clean, **env},
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_the_entry_point_sets_the_kernels_only_on_zen4() -> None:
    got = _probe("import pipeline.__main__")
    if blas._zen4():
        assert got["env"] == "Haswell"
        assert got["arch"] and all(a == "Haswell" for a in got["arch"])
    else:
        assert got["env"] is None


@pytest.mark.parametrize("first, env", [
    ("import numpy; import pipeline.__main__", {}),  # numpy already loaded: too late, leave it alone
    ("import pipeline.__main__", {"PIPELINE_BLAS_TUNING": "0"}),  # switched off
    ("import pipeline.__main__", {"OPENBLAS_CORETYPE": "Prescott"}),  # the user's choice wins
    ("import pipeline", {}),  # importing the package has no side effect on the environment
])
def test_never_overrides(first: str, env: dict) -> None:
    assert _probe(first, **env)["env"] == env.get("OPENBLAS_CORETYPE")


def test_the_entry_point_loads_no_numpy_before_choosing() -> None:
    """On any CPU: importing the entry point leaves numpy unloaded, so the choice can still apply."""
    out = subprocess.run([sys.executable, "-c", "import sys, pipeline.__main__; print('numpy' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
