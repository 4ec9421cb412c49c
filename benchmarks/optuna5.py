"""Current Optuna (5.x) as a method of the search benchmark, in an environment of its own: the main
environment keeps Optuna 2.10 (hydra-optuna-sweeper pins optuna<3). The benchmark creates
``outputs/bench/optuna5/`` once (a venv with ``optuna==5.0.0``; reused) and drives studies in a
child process over a pipe (benchmarks/optuna_child.py), evaluating every trial here, in the main
environment, with the same problem functions as every other method.

The space is mapped as a user of Optuna would write it: an interval is a float (int for integer
intervals) distribution, log-scaled only when tagged ``log``; a choice is categorical. Sequential
(one trial asked, evaluated, told): Optuna's best case. GPSampler runs only where torch imports in
that environment; a method that cannot run is reported as not run, not dropped silently.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.problems import Problem
from pipeline.search.space import Choice, Interval

OPTUNA = "optuna==5.0.0"
ENV = Path("outputs") / "bench" / "optuna5"
# In Optuna 5.0 the default TPE is multivariate (the same trials as multivariate=True, checked);
# the univariate one, Optuna's default before, is listed too.
SAMPLERS = {"tpe": "Optuna 5 TPE", "tpe_multivariate": "Optuna 5 TPE multivariate",
            "tpe_univariate": "Optuna 5 TPE univariate", "cmaes": "Optuna 5 CMA-ES", "gp": "Optuna 5 GPSampler"}


def python() -> Path | None:
    """The environment's interpreter, created on first use; ``None`` when it cannot be made."""
    exe = ENV / "bin" / "python"
    if not exe.exists():
        try:
            subprocess.run([sys.executable, "-m", "venv", str(ENV)], check=True, capture_output=True)
            subprocess.run([str(exe), "-m", "pip", "install", "--quiet", OPTUNA, "cmaes", "scipy"], check=True,
                           capture_output=True, timeout=900)
        except (subprocess.SubprocessError, OSError) as exc:
            print(f"optuna5: environment not made ({exc})", file=sys.stderr)
            return None
    return exe


def _space(problem: Problem) -> list[dict[str, Any]]:
    out = []
    for d in problem.space.dims:
        if isinstance(d, Choice):
            out.append({"key": d.key, "kind": "categorical", "choices": list(d.values)})
        elif isinstance(d, Interval):
            out.append({"key": d.key, "kind": "int" if d.integer else "float", "low": d.low, "high": d.high,
                        "log": d.scale == "log"})
        else:
            raise ValueError(f"{d.key}: ranges are not mapped for Optuna 5")
    return out


class Child:
    """One child process running studies one after another."""

    def __init__(self, exe: Path) -> None:
        child = Path(__file__).with_name("optuna_child.py")
        self.proc = subprocess.Popen([str(exe), str(child)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     bufsize=1)

    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the Optuna 5 child process ended")
        return json.loads(line)

    def probe(self) -> dict[str, Any]:
        self._send({"probe": True})
        return self._read()

    def study(self, problem: Problem, sampler: str, seed: int, n: int) -> list[float]:
        self._send({"space": _space(problem), "sampler": sampler, "seed": seed, "n_trials": n})
        values = []
        for message in iter(self._read, {"done": True}):
            value = problem.f(message["params"])
            values.append(value)
            self._send({"value": value if math.isfinite(value) else None})  # None: a failed trial
        return values

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def methods(gp: bool = False) -> Iterator[tuple[str, str | None]]:
    """(label, sampler) for each Optuna 5 method, sampler ``None`` when it cannot run here. The
    environment has no torch unless installed by hand (its wheels with CUDA libraries are ~5 GB),
    and GPSampler runs only when asked (``gp``): ~40 s per 100-trial study, ~90 min per seed set."""
    exe = python()
    if exe is None:
        yield from ((label + " (not run: no environment)", None) for label in SAMPLERS.values())
        return
    child = Child(exe)
    info = child.probe()
    child.close()
    for name, label in SAMPLERS.items():
        if name == "gp" and not info["torch"]:
            yield f"{label} (not run: no torch there)", None
        elif name == "gp" and not gp:
            yield f"{label} (not run: ~90 min per seed set; --optuna-gp)", None
        else:
            yield f"{label} ({info['optuna']})", name
