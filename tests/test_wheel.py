"""The built wheel runs on its own: it carries conf/ (as pipeline/conf), and from an empty
directory both a single run and a small sweep work, through ``python -m pipeline`` and the
``pipeline`` command. The wheel is installed with ``--target`` and put first on PYTHONPATH, so
the checkout's editable install is not what runs (asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist, target = tmp_path_factory.mktemp("dist"), tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)], check=True,
                   capture_output=True, timeout=600)
    (wheel,) = dist.glob("pipeline-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "pipeline/conf/config.yaml" in names and "pipeline/conf/hydra/sweeper/pipeline_zoom.yaml" in names
    assert not [n for n in names if n.startswith("conf/")]  # nothing at the top of site-packages
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=600)
    return target


def _run(installed: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_wheel_runs_from_an_empty_directory(installed: Path, tmp_path: Path) -> None:
    where = _run(installed, tmp_path, sys.executable, "-c", "import pipeline; print(pipeline.__file__)")
    assert where.stdout.strip() == str(installed / "pipeline" / "__init__.py")
    single = _run(installed, tmp_path, sys.executable, "-m", "pipeline", "trainer.epochs=1", "tracking.enabled=false")
    assert single.returncode == 0, single.stderr[-3000:]
    assert "digits/batch_norm/sgd | 1 epochs" in single.stdout
    sweep = _run(installed, tmp_path, sys.executable, "-m", "pipeline", "-m", "trainer.epochs=1",
                 "tracking.enabled=false", "hydra.sweeper.n_trials=3", "hydra.sweeper.importance=false",
                 "hydra.sweeper.plots=false", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    assert (tmp_path / "sweep" / "optimization_results.yaml").exists()


def test_the_pipeline_command_is_python_m_pipeline(installed: Path, tmp_path: Path) -> None:
    command = installed / "bin" / "pipeline"
    proc = _run(installed, tmp_path, str(command), "trainer.epochs=1", "tracking.enabled=false")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "digits/batch_norm/sgd | 1 epochs" in proc.stdout
    bad = _run(installed, tmp_path, str(command), "optimizer.momentum=abc")
    assert bad.returncode == 2 and bad.stderr == "Error: optimizer.momentum='abc': expected a number\n"
