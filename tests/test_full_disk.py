"""A full or read-only disk under a real sweep: the sweep directory and its SQLite store on a small tmpfs in a
private mount namespace (root only; skipped where it cannot be made), filled while trial 3 runs.
A full disk is not the trial's fault: the trial is run again once there is space, or the sweep
stops resumable; either way it ends with the values of an undisturbed sweep and one FINISHED
MLflow run (with metrics) per trial."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import assert_one_finished_run_per_trial, trial_values

pytestmark = pytest.mark.slow
FAULTS = str(Path(__file__).parent / "apps" / "faults")  # PIPELINE_PAUSE_AT pauses trial 3 at epoch 2
ARGS = ["model.width=16", "trainer.epochs=4", "hydra.sweeper.n_trials=8", "hydra.sweeper.importance=false",
        "hydra.sweeper.plots=false"]

# Runs inside `unshare -m`: $M becomes a 20 MB tmpfs holding the sweep and its store; the filler
# takes every byte left once trial 3 is paused. $THEN says what happens next.
SCRIPT = r"""
set -u
mount -t tmpfs -o size=20m tmpfs "$M" || exit 99
cp "$TEMPLATE" "$M/mlflow.db"
sweep() { PYTHONPATH="$FAULTS" PIPELINE_PAUSE_AT=3:2:2 exec "$PY" -m pipeline -m "hydra.sweep.dir=$M/sweep" \
          "tracking.uri=sqlite:///$M/mlflow.db" $ARGS "$@"; }
sweep > "$OUT/first.out" 2> "$OUT/first.err" &
pid=$!
while [ ! -e "$M/sweep/3/paused" ]; do kill -0 $pid 2>/dev/null || break; sleep 0.05; done
dd if=/dev/zero of="$M/filler" bs=1M count=64 2> /dev/null
df -k "$M" | tail -1 | awk '{print $4}' > "$OUT/free_kb"
if [ "$THEN" = free ]; then  # space comes back while the sweep waits to run trial 3 again
    until cat "$OUT/first.out" "$OUT/first.err" | grep -q "could not run, not for a fault of theirs"; do
        kill -0 $pid 2>/dev/null || break; sleep 0.1
    done
    rm "$M/filler"
    wait $pid; echo $? > "$OUT/first.rc"
else  # the disk stays full: stop the sweep while it waits (SIGTERM, as a scheduler would), free, resume
    until cat "$OUT/first.out" "$OUT/first.err" | grep -q "could not run, not for a fault of theirs"; do
        kill -0 $pid 2>/dev/null || break; sleep 0.1
    done
    kill -TERM $pid; wait $pid; echo $? > "$OUT/first.rc"
    rm "$M/filler"
    resume=$(grep -o "Continue with: .*" "$OUT/first.err" | head -1 | sed 's/^Continue with: //')
    (cd "$M" && eval "PYTHONPATH= $resume") > "$OUT/second.out" 2> "$OUT/second.err"; echo $? > "$OUT/second.rc"
fi
cp -a "$M/sweep" "$OUT/sweep"; cp "$M/mlflow.db" "$OUT/mlflow.db"
"""


def _namespace_works() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


needs_namespace = pytest.mark.skipif(not _namespace_works(), reason="needs root and unshare -m (a private tmpfs)")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path) -> list[float]:
    root = tmp_path_factory.mktemp("reference")
    shutil.copy(mlflow_template, root / "mlflow.db")
    proc = subprocess.run([sys.executable, "-m", "pipeline", "-m", f"hydra.sweep.dir={root / 'sweep'}",
                           f"tracking.uri=sqlite:///{root / 'mlflow.db'}", *ARGS], cwd=root, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return trial_values(root / "sweep")


def _in_namespace(script: str, tmp: Path, **env: str) -> tuple[subprocess.CompletedProcess, Path]:
    """Run ``script`` with bash in a private mount namespace, ``$M`` an empty directory under
    ``tmp`` to mount on and ``$PY`` this interpreter; returns the process and ``$M``."""
    mnt = tmp / "mnt"
    mnt.mkdir()
    proc = subprocess.run(["unshare", "-m", "bash", "-c", script], cwd=tmp, capture_output=True, text=True,
                          timeout=900, env={**os.environ, "M": str(mnt), "PY": sys.executable, **env})
    return proc, mnt


def _full_disk(tmp: Path, template: Path, then: str) -> Path:
    out = tmp / "out"
    out.mkdir()
    proc, _ = _in_namespace(SCRIPT, tmp, OUT=str(out), TEMPLATE=str(template), FAULTS=FAULTS, ARGS=" ".join(ARGS),
                            THEN=then)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int((out / "free_kb").read_text()) == 0  # the disk was full
    return out


def _nothing_lost(out: Path, reference: list[float]) -> None:
    trials = yaml.safe_load((out / "sweep" / "trials.yaml").read_text())
    assert [t["value"] for t in trials] == reference and all(t["error"] is None for t in trials)
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("pipeline").experiment_id], max_results=1000)
    assert_one_finished_run_per_trial(runs, 8)
    assert not [r for r in runs if r.info.status == "FAILED"]  # the full disk failed no trial


@needs_namespace
def test_a_disk_full_for_a_while_is_waited_for(tmp_path: Path, mlflow_template: Path, reference: list[float]) -> None:
    out = _full_disk(tmp_path, mlflow_template, "free")
    assert (out / "first.rc").read_text().strip() == "0", (out / "first.err").read_text()[-3000:]
    said = (out / "first.out").read_text() + (out / "first.err").read_text()  # (MLflow logs its own errors)
    assert "1 trial(s) could not run, not for a fault of theirs (OSError: [Errno 28] No space left" in said
    _nothing_lost(out, reference)


@needs_namespace
def test_a_disk_that_stays_full_stops_the_sweep_resumable(tmp_path: Path, mlflow_template: Path,
                                                           reference: list[float]) -> None:
    out = _full_disk(tmp_path, mlflow_template, "stop")
    first = (out / "first.err").read_text()
    assert (out / "first.rc").read_text().strip() == "130", first[-3000:]
    assert first.splitlines()[-1].startswith("Interrupted: the trials that finished are kept")
    assert "Continue with: " in first
    assert (out / "second.rc").read_text().strip() == "0", (out / "second.err").read_text()[-3000:]
    _nothing_lost(out, reference)


@needs_namespace
def test_a_full_disk_at_the_start_is_one_line(tmp_path: Path) -> None:
    """No byte free where the sweep directory would go: one line, exit 4, nothing run."""
    script = ('mount -t tmpfs -o size=1m tmpfs "$M" && dd if=/dev/zero of="$M/filler" bs=64k count=64 2>/dev/null; '
              '"$PY" -m pipeline -m "hydra.sweep.dir=$M/sweep" tracking.enabled=false trainer.epochs=2 '
              'hydra.sweeper.n_trials=2')
    proc, mnt = _in_namespace(script, tmp_path)
    assert proc.returncode == 4, proc.stderr[-3000:]
    assert proc.stderr.startswith(f"Error: hydra.sweep.dir={mnt / 'sweep'}: cannot write: ")
    assert "No space left on device" in proc.stderr and proc.stderr.count("\n") == 1


@pytest.mark.parametrize(("where", "message"), [
    ("", "is not writable (permissions or a read-only file system)"),
    ("/sweep", "cannot be created: {mnt} is not a writable directory"),
])
@needs_namespace
def test_a_read_only_sweep_directory_is_refused_up_front(tmp_path: Path, where: str, message: str) -> None:
    """The sweep directory (or where it would be made) on a read-only mount: refused before
    anything runs, as one line with exit code 2 (as root, permission bits would not stop it)."""
    script = ('mount -t tmpfs -o size=1m tmpfs "$M" && mount -o remount,ro "$M" && '
              f'"$PY" -m pipeline -m "hydra.sweep.dir=$M{where}" tracking.enabled=false trainer.epochs=2 '
              'hydra.sweeper.n_trials=2')
    proc, mnt = _in_namespace(script, tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr == f"Error: hydra.sweep.dir='{mnt}{where}': {message.format(mnt=mnt)}\n"
