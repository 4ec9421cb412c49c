"""The documentation keeps its promises: README.md stays short, every relative link of README.md
and docs/ resolves, every command README.md shows runs, and the performance page is what the
benchmark's stored results render."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def test_the_readme_is_read_in_five_minutes() -> None:
    assert len(README.read_text().splitlines()) <= 250


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+://|mailto:|#", target):
            continue
        path = (page.parent / target.split("#", 1)[0]).resolve()
        if not path.exists():
            broken.append(target)
    assert not broken, f"{page.name}: {broken}"


def readme_commands() -> list[str]:
    """Every command line of README.md's fenced bash blocks (comments cut)."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.DOTALL)
    lines = [line.split("  #", 1)[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_the_readme_shows_its_two_set_up_commands_as_ci_runs_them() -> None:
    """The README's set-up commands are the ones .ci/run executes (CI runs them from a fresh clone)."""
    ci = (ROOT / ".ci" / "run").read_text()
    setup = [c for c in readme_commands() if c.startswith("pip install")]
    assert setup == ['pip install -c constraints.txt -e . && python -m pipeline',
                     'pip install -c constraints.txt -e ".[dev,ray,optuna]" && python -m pytest']
    assert setup[1] in ci


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mlflow_ui(args: list[str], cwd: Path) -> None:
    """Start ``mlflow ui`` as README shows it (on a free port), wait for it to answer, stop it and
    its helpers (its own process group)."""
    port = str(_free_port())
    args = [port if a == "5000" else a for a in args]
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", *args[1:]], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                    assert answer.status == 200
                    return
            except OSError:
                assert proc.poll() is None, "mlflow ui exited"
                time.sleep(0.5)
        raise AssertionError("mlflow ui did not answer within 90 s")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.mark.slow
def test_every_command_of_the_readme_runs(tmp_path: Path) -> None:
    """Each command as a user would type it in an empty directory, made quick where it would train
    for long: a single run for one epoch of a small network, a sweep as its dry run (its space,
    settings and every combination checked), the MLflow UI until it answers. The set-up commands
    are CI's own (.ci/run, from a fresh clone)."""
    for command in readme_commands():
        args = shlex.split(command)
        if command.startswith("pip install"):
            continue
        if args[:3] == ["python", "-m", "pipeline"] and "-m" in args[3:]:
            args += ["hydra.sweeper.dry_run=true"]
        elif args[:3] == ["python", "-m", "pipeline"]:
            args += ["trainer.epochs=1", "model.width=8", f"hydra.run.dir={tmp_path / 'run'}",
                     f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}"]
        elif args[0] == "mlflow":
            _mlflow_ui(args, tmp_path)
            continue
        else:
            raise AssertionError(f"README shows a command this test does not know how to run: {command}")
        proc = subprocess.run([sys.executable, *args[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{command}\n{proc.stderr[-2000:]}"


def test_the_performance_page_is_rendered_from_the_stored_results() -> None:
    """docs/performance.md and README's headline rows are what benchmarks/page.py makes of
    docs/performance.json: regenerated, never edited by hand (python -m benchmarks --page)."""
    from benchmarks import page
    from benchmarks.__main__ import headline_rows, table

    stored = page.stored()
    assert page.PAGE.read_text() == page.render(stored, table)
    text = README.read_text()
    assert page.headline(stored, headline_rows) in text, "run python -m benchmarks --page"
