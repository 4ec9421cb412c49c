"""Ctrl-C and SIGTERM sent to a real sweep process: one line and exit 130, the running trial
recorded as interrupted (never failed, its MLflow run never FINISHED), and resume ends where an
uninterrupted sweep ends, with one FINISHED run per trial."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import assert_one_finished_run_per_trial, trial_values

pytestmark = pytest.mark.slow
SMALL = ["model.width=16", "trainer.epochs=4", "hydra.sweeper.n_trials=8", "hydra.sweeper.importance=false",
         "hydra.sweeper.plots=false"]


FAULTS = str(Path(__file__).parent / "apps" / "faults")  # on PYTHONPATH: PIPELINE_PAUSE_AT pauses a trial


def _args(sweep_dir: Path, uri: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", "-m", f"hydra.sweep.dir={sweep_dir}", f"tracking.uri={uri}", *SMALL,
            *extra]


def _env(**faults: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([FAULTS, os.environ.get("PYTHONPATH", "")]), **faults}


def _store(tmp: Path, template: Path, name: str) -> str:
    shutil.copy(template, tmp / f"{name}.db")
    return f"sqlite:///{tmp / f'{name}.db'}"


def _same_as_uninterrupted(sweep_dir: Path, ref_dir: Path, uri: str) -> list:
    """The resumed sweep's trials have the uninterrupted one's values, and its store one FINISHED
    run (with metrics) per trial; returns every run of the store."""
    assert trial_values(sweep_dir) == trial_values(ref_dir)
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("pipeline").experiment_id], max_results=1000)
    assert_one_finished_run_per_trial(runs, 8)
    return runs


def _as_a_terminal_would() -> None:
    """A background job of a non-interactive shell starts with SIGINT ignored; a terminal's
    foreground job has the default handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]


@pytest.mark.parametrize(("sig", "launcher"), [
    (signal.SIGINT, []), (signal.SIGTERM, []),
    # a joblib worker must record its interrupted trial within the sweep's 10 s bound: alone on the cores
    pytest.param(signal.SIGINT, JOBLIB, marks=pytest.mark.alone)], ids=["ctrl-c", "sigterm", "ctrl-c-joblib"])
def test_an_interrupted_sweep_loses_nothing(tmp_path: Path, mlflow_template: Path, sig: signal.Signals,
                                            launcher: list[str]) -> None:
    ref_dir = tmp_path / "reference"
    reference = subprocess.run(_args(ref_dir, _store(tmp_path, mlflow_template, "reference"), *launcher),
                               cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr[-3000:]
    sweep_dir, uri = tmp_path / "sweep", _store(tmp_path, mlflow_template, "sweep")
    proc = subprocess.Popen(_args(sweep_dir, uri, *launcher), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE,
                            text=True, preexec_fn=_as_a_terminal_would, start_new_session=True,
                            env=_env(PIPELINE_PAUSE_AT="3:2"))
    deadline = time.monotonic() + 300
    while not (sweep_dir / "3" / "paused").exists() and time.monotonic() < deadline:  # inside trial 3
        time.sleep(0.01)
    # Ctrl-C reaches the terminal's whole foreground process group; SIGTERM is sent to the process
    os.killpg(proc.pid, sig) if sig == signal.SIGINT else proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "Interrupted: the trials that finished are kept" in err
    records = [yaml.safe_load(p.read_text()) for p in sweep_dir.glob("*/result.json")]
    assert all(r["status"] in ("completed", "interrupted") for r in records)
    running = 2 if launcher else 1  # the trials running: trial 3 (paused) and, with 2 workers, its neighbour
    assert 1 <= [r["status"] for r in records].count("interrupted") <= running, (  # on failure: each job's files
        {d.name: sorted(f.name for f in d.iterdir()) for d in sweep_dir.iterdir() if d.name.isdigit()}, err[-3000:])
    resume = [line for line in err.splitlines() if "Continue with:" in line][0].split("Continue with: ", 1)[1]
    resumed = subprocess.run(resume, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    runs = _same_as_uninterrupted(sweep_dir, ref_dir, uri)
    assert all(r.info.status in ("FINISHED", "KILLED") for r in runs)  # nothing FAILED by the interrupt
    assert 1 <= sum(r.info.status == "KILLED" and "job" in r.data.tags for r in runs) <= running  # first runs


@pytest.mark.alone
def test_kill_9_of_a_joblib_sweep_takes_its_workers_with_it(tmp_path: Path, mlflow_template: Path) -> None:
    """``kill -9`` of the sweeping process while a joblib worker is inside trial 3: the workers
    exit within seconds (they would otherwise finish the trials they hold and write into job
    directories the resumed sweep runs again), and resume gives one FINISHED run per trial."""
    joblib = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    ref_dir = tmp_path / "reference"
    reference = subprocess.run(_args(ref_dir, _store(tmp_path, mlflow_template, "reference"), *joblib),
                               cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr[-3000:]
    sweep_dir, uri = tmp_path / "sweep", _store(tmp_path, mlflow_template, "sweep")
    proc = subprocess.Popen(_args(sweep_dir, uri, *joblib), cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, env=_env(PIPELINE_PAUSE_AT="3:2"))
    deadline = time.monotonic() + 300
    while not (sweep_dir / "3" / "paused").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 15
    alive = True
    while alive and time.monotonic() < deadline:  # any process left in the sweep's process group?
        try:
            os.killpg(proc.pid, 0)
            time.sleep(0.1)
        except ProcessLookupError:
            alive = False
    assert not alive, "joblib workers outlived the killed sweep"
    assert not (sweep_dir / "3" / "result.json").exists()
    resumed = subprocess.run(_args(sweep_dir, uri, *joblib, "hydra.sweeper.resume=true"), cwd=tmp_path,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _same_as_uninterrupted(sweep_dir, ref_dir, uri)


def test_a_job_directory_owned_by_a_live_process_is_waited_for(tmp_path: Path, mlflow_template: Path) -> None:
    """Resume meets job 3's directory locked by a live process (this test): the trial is not
    run beside it but retried after 5 s, once the lock is gone; the stale lock the killed sweep
    left in another job's directory is taken over. The sweep ends as an uninterrupted one."""
    ref_dir = tmp_path / "reference"
    reference = subprocess.run(_args(ref_dir, _store(tmp_path, mlflow_template, "reference")), cwd=tmp_path,
                               capture_output=True, text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr[-3000:]
    sweep_dir, uri = tmp_path / "sweep", _store(tmp_path, mlflow_template, "sweep")
    killed = subprocess.run(_args(sweep_dir, uri), cwd=tmp_path, capture_output=True, text=True, timeout=600,
                            env=_env(PIPELINE_KILL_AT="2:2"))
    assert killed.returncode == -9 and (sweep_dir / "2" / ".job.lock").exists()  # stale: its process is dead
    (sweep_dir / "3").mkdir()
    (sweep_dir / "3" / ".job.lock").write_text(f"{socket.gethostname()} {os.getpid()}")  # alive: this test
    resumed = subprocess.Popen(_args(sweep_dir, uri, "hydra.sweeper.resume=true"), cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in resumed.stdout:  # the lock goes once the sweep said it waits for it
        seen.append(line)
        if f"in use by process {os.getpid()}" in line:
            (sweep_dir / "3" / ".job.lock").unlink()
    assert resumed.wait(timeout=600) == 0, "".join(seen)[-3000:]
    assert any("1 trial(s) could not run, not for a fault of theirs (JobBusy" in line for line in seen)
    _same_as_uninterrupted(sweep_dir, ref_dir, uri)
    assert not list(sweep_dir.glob("*/.job.lock"))


def test_a_second_ctrl_c_stops_at_once(tmp_path: Path, mlflow_template: Path) -> None:
    """The first Ctrl-C starts the orderly stop; a second one while it runs ends the process at
    once (exit 130), and what was written so far still resumes."""
    sweep_dir, uri = tmp_path / "sweep", _store(tmp_path, mlflow_template, "sweep")
    proc = subprocess.Popen(_args(sweep_dir, uri), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_as_a_terminal_would, start_new_session=True,
                            env=_env(PIPELINE_PAUSE_AT="3:2"))
    deadline = time.monotonic() + 300
    while not (sweep_dir / "3" / "paused").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    # 130 from the sweep, or -SIGINT when the second signal lands after Python began to exit
    assert proc.returncode in (130, -signal.SIGINT) and "Traceback" not in err
    assert "Interrupted again: stopping now." in err or "Interrupted: the trials that finished are kept" in err
    resumed = subprocess.run(_args(sweep_dir, uri, "hydra.sweeper.resume=true"), cwd=tmp_path,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert len(yaml.safe_load((sweep_dir / "trials.yaml").read_text())) == 8
