"""A plugin kept outside the repository: found through hydra.searchpath, and checked by the
contract suite shipped in the package (python -m pipeline.testing, docs/plugins.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import trial_values

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
SCALE = '''
import numpy as np
from plugins.normalization.base import Normalization

class Scale(Normalization):
    provides_shift = False

    def __init__(self, num_features, dtype=np.float64, init=1.0):
        super().__init__(num_features, dtype)
        self.params = {"s": np.full(num_features, init, dtype=self.dtype)}
        self.grads = {"s": np.zeros(num_features, dtype=self.dtype)}

    def forward(self, x, training):
        self._x = x
        return x * self.params["s"]

    def backward(self, dy):
        np.einsum("ij,ij->j", dy, self._x, out=self.grads["s"])
        return dy * self.params["s"]
'''


def _project(tmp_path: Path) -> Path:
    """A user's project beside the repository: a Scale normalization and its YAML under conf/."""
    project = tmp_path / "my_project"
    (project / "my_plugins").mkdir(parents=True)
    (project / "my_plugins" / "__init__.py").write_text("")
    (project / "my_plugins" / "scale.py").write_text(SCALE)
    (project / "conf" / "normalization").mkdir(parents=True)
    (project / "conf" / "normalization" / "scale.yaml").write_text("_target_: my_plugins.scale.Scale\ninit: 1.0\n")
    return project


def test_external_normalization_plugin(tmp_path: Path) -> None:
    project = _project(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(project), "HYDRA_FULL_ERROR": "0"}
    run = subprocess.run([sys.executable, "-m", "pipeline", "hydra.searchpath=[file://conf]", "normalization=scale",
                          "tracking.enabled=false", "trainer.epochs=2"],
                         cwd=project, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "digits/scale/sgd" in run.stdout
    # the shipped contract suite, the one command of docs/plugins.md, from the user's own project
    contract = subprocess.run([sys.executable, "-m", "pipeline.testing", "normalization", "conf/normalization",
                               "--", "-v"], cwd=project, capture_output=True, text=True, timeout=300, env=env)
    assert contract.returncode == 0, contract.stdout[-3000:]
    assert "test_gradients_against_finite_differences[scale-True] PASSED" in contract.stdout
    assert "batch_norm" not in contract.stdout
    # a wrong backward (the gradient of x, not of x * s) fails the same command
    scale = project / "my_plugins" / "scale.py"
    scale.write_text(SCALE.replace("return dy * self.params[\"s\"]", "return dy"))
    broken = subprocess.run([sys.executable, "-m", "pipeline.testing", "normalization",
                             "conf/normalization/scale.yaml"], cwd=project, capture_output=True, text=True,
                            timeout=300, env=env)
    assert broken.returncode == 1 and "FAILED" in broken.stdout and "test_gradients_against_finite_differences" \
        in broken.stdout, broken.stdout[-3000:]


def test_reproduce_and_resume_commands_work_from_another_directory(tmp_path: Path) -> None:
    """The sweep's commands carry the relative ``hydra.searchpath=[file://conf]`` as an absolute
    path, so the stored reproduce command and the resume command run from anywhere."""
    import shlex

    import yaml

    project, elsewhere, sweep = _project(tmp_path), tmp_path / "elsewhere", tmp_path / "sweep"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(project), "HYDRA_FULL_ERROR": "0"}
    run = subprocess.run([sys.executable, "-m", "pipeline", "-m", "hydra.searchpath=[file://conf]",
                          "normalization=scale", "tracking.enabled=false", "trainer.epochs=1",
                          "hydra.sweeper.n_trials=2", "hydra.sweeper.fidelity.key=null", "hydra.sweeper.plots=false",
                          "hydra.sweeper.importance=false", f"hydra.sweep.dir={sweep}"],
                         cwd=project, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    reproduce = yaml.safe_load((sweep / "optimization_results.yaml").read_text())["reproduce"]
    assert f"hydra.searchpath=[file://{project / 'conf'}]" in reproduce
    assert f"Reproduce: {reproduce}" in run.stdout
    args = shlex.split(reproduce)
    assert args[:3] == ["python", "-m", "pipeline"]
    again = subprocess.run([sys.executable, *args[1:]], cwd=elsewhere, capture_output=True, text=True, timeout=300,
                           env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "digits/scale/sgd | 1 epochs" in again.stdout
    resume = shlex.split(json.loads((sweep / "sweep_state.json").read_text())["resume_command"])
    assert f"hydra.searchpath=[file://{project / 'conf'}]" in resume
    resumed = subprocess.run([sys.executable, *resume[1:]], cwd=elsewhere, capture_output=True, text=True,
                             timeout=300, env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert trial_values(sweep)[0] is not None and len(trial_values(sweep)) == 2
