"""A sweep's progress: one live status line on a terminal (rich), ``progress:`` log lines
otherwise (CI, files), nothing when quiet.

Launchers hand a whole round back at once, so a sweep counts finished trials from the
``result.json`` files its jobs write, polled by a background thread.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from pipeline.atomic import read_json
from pipeline.sweep.files import RESULT_FILE

log = logging.getLogger("pipeline.progress")
# Loggers that print one line per launched job (with every internal override): shown only when
# the sweep is verbose.
LAUNCHER_LOGGERS = ("hydra._internal.core_plugins.basic_launcher",
                    "hydra_plugins.hydra_joblib_launcher._core",
                    "hydra_plugins.hydra_ray_launcher._core")
# The sweep's own information lines (plan, rounds, failed trials): off a terminal they are the
# record of the sweep; on one the live status says the same, so only warnings are shown above it.
SWEEP_LOGGERS = ("pipeline.sweep", "pipeline.progress", "hydra_plugins.zoom_sweeper")


class SweepProgress(AbstractContextManager):
    """Round r/R, trials done/N, failures and the best value so far with its params.

    ``watch(label, round, job_dirs, params)`` starts counting a round's ``result.json`` files;
    ``finish_round()`` stops. On a terminal a rich live line sits below the output and only
    warnings are printed above it; elsewhere each finished trial gives one ``progress:`` line.
    ``quiet``: nothing but warnings; ``verbose``: the launchers' per-job lines too (they are
    silenced otherwise)."""

    def __init__(self, total: int, rounds: int, direction: str, *, quiet: bool = False, verbose: bool = False,
                 live: bool | None = None, metric: str | None = None, poll_s: float = 0.5,
                 rungs: Any = None) -> None:
        self.total, self.rounds, self.direction, self.metric = total, rounds, direction, metric or "objective"
        # a fidelity sweep (pipeline.search.fidelity.RungPlan): rungs, their fidelity, the budget spent so far
        self.rungs, self.spent = rungs, 0.0
        self._cost: dict[Path, float] = {}
        self._best_fidelity: float = float("-inf")
        self.quiet, self.verbose = quiet, verbose
        self.live = sys.stdout.isatty() if live is None else live
        self.poll_s = poll_s
        self.done = 0
        self.failed = 0
        self.best: tuple[float, Mapping[str, Any]] | None = None
        self._seen: set[Path] = set()
        self._round: tuple[str, int, Sequence[Path], Sequence[Mapping[str, Any]]] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: Any = None
        self._restore: list[Callable[[], None]] = []

    # --- display --------------------------------------------------------------------------

    def status(self) -> str:
        if self._round is None:
            return f"sweep: {self.done}/{self.total} trials"
        label, r, _, _ = self._round
        where = "" if label == "all" else f"[{label}] "
        if self.rungs is not None:
            unit = self.rungs.fidelity.unit
            text = (f"{where}rung {r}/{self.rounds} ({self.rungs.levels[r - 1]:g} {unit}) · trials {self.done}/"
                    f"{self.total} · {unit} {self.spent:g}/{self.rungs.spent:g} · failed {self.failed}")
        else:
            text = f"{where}round {r}/{self.rounds} · trials {self.done}/{self.total} · failed {self.failed}"
        if self.best is not None:
            value, params = self.best
            shown = " ".join(f"{k}={_short(v)}" for k, v in params.items())
            text += f" · best {self.metric}={value:.4g} ({shown})"
        return text

    def __enter__(self) -> SweepProgress:
        quieter = [*(LAUNCHER_LOGGERS if not self.verbose else ()),
                   *(SWEEP_LOGGERS if self.quiet or (self.live and not self.verbose) else ())]
        for name in quieter:
            logger = logging.getLogger(name)
            level = logger.level
            logger.setLevel(logging.WARNING)
            self._restore.append(lambda logger=logger, level=level: logger.setLevel(level))
        if self.quiet or not self.live:
            return self
        from rich.console import Console
        from rich.live import Live

        self._live = Live(self._line(), console=Console(stderr=True), refresh_per_second=4, transient=False,
                          redirect_stdout=True, redirect_stderr=True)
        self._live.__enter__()
        # log handlers hold the real streams: point them at the live display's proxies meanwhile
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                old = handler.setStream(sys.stderr)
                self._restore.append(lambda handler=handler, old=old: handler.setStream(old))
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop counting and leave the last status on screen; the terminal is the caller's again."""
        self._stop_thread()
        if self._live is not None:
            self._live.update(self._line())
        for restore in reversed(self._restore):
            restore()
        self._restore.clear()
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _line(self) -> Any:
        """The live status as one row, cut with an ellipsis at the terminal's width."""
        from rich.text import Text

        return Text(self.status(), no_wrap=True, overflow="ellipsis")

    def _show(self) -> None:
        if self._live is not None:
            self._live.update(self._line())

    # --- counting -------------------------------------------------------------------------

    def watch(self, label: str, r: int, job_dirs: Sequence[Path], params: Sequence[Mapping[str, Any]],
              costs: Sequence[float] = ()) -> None:
        """Count the round's trials as their ``result.json`` files appear (``costs``: the fidelity
        each one spends, in a fidelity sweep)."""
        self._stop_thread()
        self._round = (label, r, list(job_dirs), list(params))
        self._cost.update(zip(job_dirs, costs, strict=False))
        self._scan()
        self._show()
        if not self.quiet:
            self._stop.clear()
            self._thread = threading.Thread(target=self._poll, name="sweep-progress", daemon=True)
            self._thread.start()

    def finish_round(self) -> None:
        self._stop_thread()
        self._scan()
        self._show()

    def _stop_thread(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_s):
            if self._scan():
                self._show()

    def _scan(self) -> bool:
        if self._round is None:
            return False
        changed = False
        with self._lock:
            _, _, dirs, params = self._round
            for job_dir, p in zip(dirs, params, strict=True):
                if job_dir in self._seen:
                    continue
                record = read_json(job_dir / RESULT_FILE)
                if record is None:
                    continue
                self._seen.add(job_dir)
                self.done += 1
                self.spent += self._cost.get(job_dir, 0.0)
                changed = True
                value = record.get("value") if record.get("status") == "completed" else None
                # a fidelity sweep's best is the best at the highest fidelity reached
                fidelity = self.rungs.levels[self._round[1] - 1] if self.rungs is not None else 0.0
                if not isinstance(value, (int, float)) or value != value:  # failed or NaN
                    self.failed += 1
                elif self.best is None or fidelity > self._best_fidelity or (
                        fidelity == self._best_fidelity and (value < self.best[0] if self.direction == "minimize"
                                                             else value > self.best[0])):
                    self.best, self._best_fidelity = (float(value), p), fidelity
                if not self.quiet and self._live is None:
                    log.info(f"progress: {self.status()}")
        return changed


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)

