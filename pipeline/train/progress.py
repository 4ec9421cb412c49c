"""Per-epoch progress of a single training run: a rich bar on a terminal, one line per epoch
elsewhere (CI, files), nothing when disabled (a sweep shows its own progress)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any


class EpochProgress(AbstractContextManager):
    """Per-epoch progress of a single run: a rich bar on a terminal, else one line per epoch."""

    def __init__(self, epochs: int, *, enabled: bool = True, live: bool | None = None) -> None:
        self.epochs = epochs
        self.enabled = enabled
        self.live = sys.stdout.isatty() if live is None else live
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> EpochProgress:
        if self.enabled and self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("epoch"), MofNCompleteColumn(), BarColumn(),
                                 TextColumn("{task.description}"), TimeElapsedColumn(), transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task("", total=self.epochs)
        return self

    def update(self, epoch: int, metrics: Mapping[str, float]) -> None:
        if not self.enabled:
            return
        text = " ".join(f"{k}={metrics[k]:.4f}" for k in ("train_loss", "val_loss", "val_acc") if k in metrics)
        if self._bar is not None:
            self._bar.update(self._task, completed=epoch, description=text)
        else:
            print(f"epoch {epoch}/{self.epochs} {text}", flush=True)

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
