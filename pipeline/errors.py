"""User-facing errors: raised early, printed without a traceback by the command line."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A bad configuration value; the message names the key and the offending value."""

    def __init__(self, key: str, value: Any, problem: str) -> None:
        self.key, self.value, self.problem = key, value, problem
        super().__init__(f"{key}={value!r}: {problem}")

    def __reduce__(self) -> tuple:  # picklable across process launchers (joblib, ray)
        return type(self), (self.key, self.value, self.problem)


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite; the trial is recorded as failed."""

    def __init__(self, epoch: int, loss: float) -> None:
        self.epoch, self.loss = epoch, loss
        super().__init__(f"training loss became non-finite ({loss}) in epoch {epoch}")

    def __reduce__(self) -> tuple:
        return type(self), (self.epoch, self.loss)


class TrialTimeout(RuntimeError):
    """The trial ran past ``trainer.timeout_s``; checked between mini-batches."""

    def __init__(self, epoch: int, limit_s: float) -> None:
        self.epoch, self.limit_s = epoch, limit_s
        super().__init__(f"trial ran past trainer.timeout_s={limit_s} s (in epoch {epoch})")

    def __reduce__(self) -> tuple:
        return type(self), (self.epoch, self.limit_s)
