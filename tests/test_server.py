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

from tests.conftest import sweep_runs

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("server")
    port = _free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    # its own process group: `mlflow server` starts helper processes that outlive a plain kill
    proc = subprocess.Popen(
        [str(mlflow_bin), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{root / 'server.db'}", "--artifacts-destination", str(root / "art")],
        cwd=root, stdout=open(root / "server.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("mlflow server did not start:\n" + (root / "server.log").read_text()[-3000:])
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


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
