"""The two shipped worked-example plugins: layer_norm and sobol (the contract tests cover them
too, by their YAML files alone)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.search.space import parse
from pipeline.testing.gradients import assert_close
from plugins.normalization.layer_norm import LayerNorm
from plugins.samplers.sobol import SobolSampler


def test_layer_norm_by_hand_and_with_one_sample() -> None:
    ln = LayerNorm(4, eps=1e-12)
    ln.params["gamma"][...] = [1.0, 2.0, 1.0, 1.0]
    ln.params["beta"][...] = [0.0, 0.0, 0.0, 1.0]
    x = np.array([[1.0, 2.0, 3.0, 4.0]])  # mean 2.5, var 1.25
    z = (x - 2.5) / np.sqrt(1.25)
    assert_close(ln.forward(x, training=True), z * [1, 2, 1, 1] + [0, 0, 0, 1], rtol=1e-9)
    assert_close(ln.forward(x, training=False), ln.forward(x, training=True), rtol=0, atol=0)
    assert LayerNorm.provides_shift and LayerNorm.min_batch_size == 1


def test_layer_norm_matches_pytorch_when_installed() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, dy = rng.normal(2, 3, (5, 6)), rng.normal(size=(5, 6))
    ln = LayerNorm(6, eps=1e-5)
    ln.params["gamma"][...] = rng.uniform(0.5, 1.5, 6)
    ln.params["beta"][...] = rng.normal(size=6)
    ref = torch.nn.LayerNorm(6, eps=1e-5, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(ln.params["gamma"]))
        ref.bias.copy_(torch.from_numpy(ln.params["beta"]))
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = ref(xt)
    yt.backward(torch.from_numpy(dy))
    assert_close(ln.forward(x, True), yt.detach().numpy())
    assert_close(ln.backward(dy), xt.grad.numpy())
    assert_close(ln.grads["gamma"], ref.weight.grad.numpy())


def test_sobol_points_are_stratified_in_each_dimension() -> None:
    space = parse({"a": "tag(linear, interval(0, 1))", "b": "tag(log, interval(1e-4, 1))", "c": "choice(x, y)"})
    points = SobolSampler(seed=3).sample(space, 16)
    a = np.array([p["a"] for p in points])
    assert sorted(np.floor(a * 16).astype(int)) == list(range(16))  # one point per sixteenth
    decades = np.histogram(np.log10([p["b"] for p in points]), bins=[-4, -3, -2, -1, 0])[0]
    assert decades.tolist() == [4, 4, 4, 4]
    assert sorted(p["c"] for p in points) == ["x"] * 8 + ["y"] * 8


@pytest.mark.slow
def test_both_work_in_a_sweep(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "-m", "normalization=layer_norm", "sampler=sobol",
         f"hydra.sweep.dir={tmp_path / 'sweep'}", "tracking.enabled=false", "trainer.epochs=3", "model.width=32",
         "hydra.sweeper.n_trials=8", "hydra.sweeper.rounds=2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, "HYDRA_FULL_ERROR": "0"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert results["sampler"] == "sobol" and results["trials"] == 8 and results["failed"] == 0
    assert "digits/layer_norm/sgd" in (tmp_path / "sweep" / "0" / "__main__.log").read_text()  # the job's output
