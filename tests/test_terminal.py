"""What a sweep shows a user: on a terminal one live status line, then the final report, with
each job's output in the log file of its directory (Hydra's basic launcher, which runs jobs in
the sweeping process, and joblib, whose workers write to the same terminal); off a terminal
``progress:`` lines; ``quiet`` only the report; ``verbose`` everything. The terminal is a real
pseudo-terminal of the given size, read back through a terminal emulator (pyte)."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
SWEEP = ["-m", "pipeline", "-m", "hydra.sweeper.n_trials=12", "hydra.sweeper.fidelity.key=null", "trainer.epochs=2",
         "tracking.enabled=false", "hydra.sweeper.importance=false", "hydra.sweeper.plots=false"]
SUMMARY = "digits/batch_norm/sgd | 2 epochs"  # the line each trial prints


def run_in_terminal(args: list[str], cwd: Path, columns: int, rows: int = 200) -> list[str]:
    """Run ``python args`` on a pseudo-terminal of ``columns`` x ``rows`` and return the screen
    it leaves (trailing blanks stripped, empty lines dropped)."""
    import pyte

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "CI")}
    env.update(TERM="xterm-256color", HYDRA_FULL_ERROR="0")
    proc = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave,
                            close_fds=True)
    os.close(slave)
    screen = pyte.Screen(columns, rows)
    stream = pyte.ByteStream(screen)
    while True:
        ready, _, _ = select.select([master], [], [], 300)
        assert ready, "no output for 300 s"
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the other side is closed
            break
        if not chunk:
            break
        stream.feed(chunk)
    os.close(master)
    assert proc.wait(timeout=60) == 0
    return [line.rstrip() for line in screen.display if line.strip()]


@pytest.mark.parametrize(("columns", "launcher"), [(80, "basic"), (160, "joblib")])
def test_a_sweep_on_a_terminal_shows_one_status_line_then_the_report(tmp_path: Path, columns: int,
                                                                       launcher: str) -> None:
    sweep = tmp_path / "sweep"
    screen = run_in_terminal([*SWEEP, f"hydra/launcher={launcher}", f"hydra.sweep.dir={sweep}"], tmp_path, columns)
    status = re.compile(r"round 2/2 · trials 12/12 · failed \d+ · best val_loss=\d")
    assert status.match(screen[0]), screen[:3]
    assert len(screen[0]) <= columns
    assert screen[1].startswith("Best val_loss="), screen[:3]
    shown = "\n".join(screen)
    for noise in (SUMMARY, "Launching", "#0 :", "progress:", "[HYDRA]", "If interrupted"):
        assert noise not in shown, noise
    top = screen.index(next(line for line in screen if line.startswith("Top trials")))
    assert all(len(line) <= columns for line in screen[top + 1:top + 12])  # the table fits the terminal
    for job in range(12):  # what each job printed is in its log file
        assert SUMMARY in (sweep / str(job) / "__main__.log").read_text()


def _piped(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    tmp_path.mkdir(exist_ok=True)
    args = [sys.executable, "-m", "pipeline", "-m", "hydra.sweeper.n_trials=3", "hydra.sweeper.fidelity.key=null",
            "trainer.epochs=1", "tracking.enabled=false", "hydra.sweeper.importance=false",
            "hydra.sweeper.plots=false", f"hydra.sweep.dir={tmp_path / 'sweep'}", *extra]
    proc = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def test_off_a_terminal_progress_lines_in_one_format_and_rounded(tmp_path: Path) -> None:
    proc = _piped(tmp_path)
    logged = proc.stdout + proc.stderr
    progress = [line.split("progress: ", 1)[1] for line in logged.splitlines() if "progress: " in line]
    assert len(progress) == 3
    assert all(re.fullmatch(r"round 1/1 · trials \d/3 · failed \d · best val_loss=[\d.]{1,6} \(.*\)", p)
               for p in progress), progress
    assert re.search(r"round 1/1 done: 3 trials, 0 failed; best so far val_loss=[\d.]{1,6}\n", logged)
    assert SUMMARY.replace("2 epochs", "1 epochs") not in logged and "Launching" not in logged


def test_quiet_leaves_only_the_report_and_verbose_shows_every_job(tmp_path: Path) -> None:
    quiet = _piped(tmp_path / "q", "hydra.sweeper.quiet=true")
    assert quiet.stderr == ""
    assert quiet.stdout.startswith("Best val_loss=") and "progress:" not in quiet.stdout
    verbose = _piped(tmp_path / "v", "hydra.sweeper.verbose=true")
    shown = verbose.stdout + verbose.stderr
    assert shown.count("digits/batch_norm/sgd | 1 epochs") == 3
    assert "Launching 1 jobs locally" in shown
