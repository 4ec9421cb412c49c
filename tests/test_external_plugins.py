"""A plugin kept outside the repository: found through hydra.searchpath, and checked by the
contract test pointed at its directory (docs/plugins.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_external_normalization_plugin(tmp_path: Path) -> None:
    project = tmp_path / "my_project"
    (project / "my_plugins").mkdir(parents=True)
    (project / "my_plugins" / "__init__.py").write_text("")
    (project / "my_plugins" / "scale.py").write_text(SCALE)
    (project / "conf" / "normalization").mkdir(parents=True)
    (project / "conf" / "normalization" / "scale.yaml").write_text("_target_: my_plugins.scale.Scale\ninit: 1.0\n")
    env = {**os.environ, "PYTHONPATH": str(project), "HYDRA_FULL_ERROR": "0"}
    run = subprocess.run([sys.executable, "-m", "pipeline", "hydra.searchpath=[file://conf]", "normalization=scale",
                          "tracking.enabled=false", "trainer.epochs=2"],
                         cwd=project, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "digits/scale/sgd" in run.stdout
    contract = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider",
         str(ROOT / "tests" / "test_normalization_contract.py")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**env, "PIPELINE_NORMALIZATION_DIR": str(project / "conf" / "normalization")})
    assert contract.returncode == 0, contract.stdout[-3000:]
    assert "test_gradients_against_finite_differences[scale-True] PASSED" in contract.stdout
    assert "batch_norm" not in contract.stdout
