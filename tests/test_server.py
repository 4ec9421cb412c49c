"""A team setup: a real ``mlflow server`` on 127.0.0.1 (SQLite backend, proxied artifacts); a
sweep logs through HTTP and everything is read back through the server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import assert_one_finished_run_per_trial, sweep_runs, trial_values

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(root: Path, port: int) -> subprocess.Popen:
    """``mlflow server`` on 127.0.0.1:``port`` over ``root/server.db``, answering /health."""
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    # its own process group: `mlflow server` starts helper processes that outlive a plain kill
    proc = subprocess.Popen(
        [str(mlflow_bin), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{root / 'server.db'}", "--artifacts-destination", str(root / "art")],
        cwd=root, stdout=open(root / "server.log", "a"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                _stop(proc)
                pytest.fail("mlflow server did not start:\n" + (root / "server.log").read_text()[-3000:])
            time.sleep(0.5)


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("server")
    port = _free_port()
    proc = _start(root, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


def test_sweep_through_a_tracking_server(server: str, tmp_path: Path) -> None:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0",
           "MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": "s3cret-pw"}
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "-m", f"hydra.sweep.dir={tmp_path / 'sweep'}", f"tracking.uri={server}",
         "trainer.epochs=2", "model.width=16", "hydra.sweeper.n_trials=6", "hydra.sweeper.rounds=2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, parent, trials = sweep_runs(server)
    assert len(trials) == 6 and all(t.info.status == "FINISHED" for t in trials)
    assert sorted(t.data.tags["round"] for t in trials) == ["1"] * 3 + ["2"] * 3
    # artifacts went through the server's proxy and come back through it
    assert trials[0].info.artifact_uri.startswith("mlflow-artifacts:")
    assert {a.path for a in client.list_artifacts(trials[0].info.run_id)} == {"config.yaml", "model.npz"}
    local = client.download_artifacts(trials[0].info.run_id, "config.yaml", str(tmp_path))
    assert "epochs: 2" in Path(local).read_text()
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "zoom")} == {
        "zoom/round_1.yaml", "zoom/round_2.yaml"}
    # credentials travel only in the environment: never in a param, tag, file or log line
    for run in [parent, *trials]:
        assert "s3cret-pw" not in str(run.data.params) + str(run.data.tags)
    for path in (tmp_path / "sweep").rglob("*"):
        if path.is_file() and path.suffix in {".yaml", ".json", ".log"}:
            assert "s3cret-pw" not in path.read_text(errors="ignore"), path
    assert "s3cret-pw" not in proc.stdout + proc.stderr


def test_a_server_restarted_mid_sweep_loses_nothing(tmp_path: Path, mlflow_template: Path) -> None:
    """The tracking server stops while trial 2 runs and comes back 8 s later: the trial that could
    not log is launched again (not failed), and the sweep ends with the values of an undisturbed
    one and one FINISHED run with metrics per trial, read back through the server."""
    import shutil


    args = ["model.width=16", "trainer.epochs=4", "hydra.sweeper.n_trials=8", "hydra.sweeper.importance=false",
            "hydra.sweeper.plots=false"]
    shutil.copy(mlflow_template, tmp_path / "reference.db")
    # the undisturbed sweep runs beside the disturbed one (2 cores), not before it
    reference = subprocess.Popen([sys.executable, "-m", "pipeline", "-m", f"hydra.sweep.dir={tmp_path / 'reference'}",
                                  f"tracking.uri=sqlite:///{tmp_path / 'reference.db'}", *args], cwd=tmp_path,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    root = tmp_path / "server"
    root.mkdir()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = _start(root, port)
    faults = str(Path(__file__).parent / "apps" / "faults")
    # MLflow's HTTP client retries a refused request 7 times over minutes; 2 keeps the test short
    env = {**os.environ, "PYTHONPATH": faults, "PIPELINE_PAUSE_AT": "2:2:2", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
           "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "-m", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                             f"tracking.uri={url}", *args], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 300
        while not (tmp_path / "sweep" / "2" / "paused").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        _stop(server)
        time.sleep(8)
        server = _start(root, port)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
        _stop(server)
        server = _start(root, port)  # to read the runs back
    try:
        _, reference_err = reference.communicate(timeout=600)
        assert reference.returncode == 0, reference_err[-3000:]
        assert proc.returncode == 0, err[-3000:]
        assert "1 trial(s) could not run, not for a fault of theirs (" in out + err
        assert trial_values(tmp_path / "sweep") == trial_values(tmp_path / "reference")
        client, parent, trials = sweep_runs(url)
        assert_one_finished_run_per_trial(trials, 8)
        assert not [t for t in trials if t.info.status == "FAILED"] and parent.info.status == "FINISHED"
    finally:
        _stop(server)
