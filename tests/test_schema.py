"""Types checked by the schema (pipeline/schema.py) as Hydra composes, reported as one line naming
the key and value, exit 2, nothing written: single runs, sweep planning, and YAML files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "HYDRA_FULL_ERROR": "0"})


@pytest.mark.parametrize(("override", "line"), [
    ("trainer.epochs=abc", "Error: trainer.epochs='abc': expected an integer"),
    ("model.width=1.5", "Error: model.width=1.5: expected an integer"),
    ("seed=null", "Error: seed=None: must not be null"),
    ("model.depth=two", "Error: model.depth='two': expected an integer"),
    ("trainer.batch_size=[1,2]", "Error: trainer.batch_size=[1, 2]: expected an integer"),
    ("tracking.enabled=maybe", "Error: tracking.enabled='maybe': expected true or false"),
    ("tracking.flush_interval_s=soon", "Error: tracking.flush_interval_s='soon': expected a number"),
])
def test_a_single_run_refuses_a_wrong_type(tmp_path: Path, override: str, line: str) -> None:
    proc = _run(tmp_path, override)
    assert (proc.returncode, proc.stderr) == (2, line + "\n")
    assert list(tmp_path.iterdir()) == []  # no run directory, no store


@pytest.mark.parametrize("expression", ["trainer.epochs=3,abc", "trainer.epochs=choice(3, abc)"])
def test_sweep_planning_refuses_a_wrong_type(tmp_path: Path, expression: str) -> None:
    proc = _run(tmp_path, "-m", f"hydra.sweep.dir={tmp_path / 'sweep'}", expression)
    assert (proc.returncode, proc.stderr) == (2, "Error: trainer.epochs='abc': expected an integer\n")
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_type_in_a_yaml_file_is_named_too(tmp_path: Path) -> None:
    extra = tmp_path / "extra" / "model"
    extra.mkdir(parents=True)
    (extra / "wide.yaml").write_text("width: very\ndepth: 2\ndtype: float32\n")
    proc = _run(tmp_path, f"--config-dir={tmp_path / 'extra'}", "model=wide")
    assert (proc.returncode, proc.stderr) == (2, "Error: model.width='very': expected an integer\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["extra"]
