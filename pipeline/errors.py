"""User-facing errors: raised early, printed without a traceback by the command line."""

from __future__ import annotations

import errno
from typing import Any


class ConfigError(ValueError):
    """A bad configuration value; the message names the key and the offending value."""

    def __init__(self, key: str, value: Any, problem: str) -> None:
        self.key, self.value, self.problem = key, value, problem
        super().__init__(f"{key}={value!r}: {problem}")

    def __reduce__(self) -> tuple:  # picklable across process launchers (joblib, ray)
        return type(self), (self.key, self.value, self.problem)


class TrackingUnavailable(ConfigError):
    """The MLflow server does not answer: bad input before a sweep starts, an infrastructure
    failure (retried, never a failed trial) once it runs."""


class JobBusy(RuntimeError):
    """Another live process is running this job (its directory's lock names it): the sweep waits
    and tries again, never runs one trial twice at once."""


class InfrastructureDown(RuntimeError):
    """Trials kept failing for a reason that is not theirs (the tracking store unreachable or
    locked) after every retry: the sweep stops, resumable, with nothing recorded as failed."""


def infrastructure(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says the tracking store or the disk,
    not the trial, failed: a server that does not answer, a connection refused or reset, a SQLite
    store locked past its busy timeout, a full disk (or quota). Such a trial is run again, never
    recorded as failed."""
    seen = 0
    while exc is not None and seen < 20:
        name, text = type(exc).__name__, str(exc)
        if isinstance(exc, (TrackingUnavailable, JobBusy, ConnectionError, TimeoutError)):
            return True
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if name in {"OperationalError", "MlflowException"} and ("database is locked" in text
                                                                 or "unable to open database" in text
                                                                 or "database or disk is full" in text):
            return True
        if name in {"MaxRetryError", "NewConnectionError", "ConnectTimeout", "ReadTimeout"}:
            return True
        if name == "MlflowException" and "API request to" in text and (
                "Max retries exceeded" in text or "Connection" in text or "timed out" in text):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


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


class TrialPruned(Exception):
    """Raised by an ``on_epoch`` callback to stop a trial early (a pruner's decision): the trial
    ends as pruned (MLflow run KILLED with tag ``pruned``), not as failed."""

    def __init__(self, epoch: int, reason: str = "pruned") -> None:
        self.epoch, self.reason = epoch, reason
        super().__init__(f"{reason} after epoch {epoch}")

    def __reduce__(self) -> tuple:
        return type(self), (self.epoch, self.reason)


_EXPECTED = {"Integer": "expected an integer", "Float": "expected a number", "Boolean": "expected true or false",
             "String": "expected a string"}


def as_config_error(exc: BaseException) -> ConfigError | None:
    """The one-line :class:`ConfigError` for an OmegaConf type error found while composing (the
    exception itself or its cause), else ``None``."""
    import re

    from omegaconf.errors import ValidationError

    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ValidationError):
        cause = cause.__cause__ or cause.__context__
    if cause is None or not cause.full_key:
        return None
    text = str(cause).splitlines()[0]
    converted = re.search(r"Value '(.*)' of type '(\w+)' could not be converted to (\w+)", text)
    not_bool = re.search(r"Value '(.*)' is not a valid bool", text)
    if not_bool:
        return ConfigError(cause.full_key, not_bool.group(1), _EXPECTED["Boolean"])
    if converted:
        value, kind, target = converted.groups()
        shown: Any = value if kind == "str" else _literal(value)
        return ConfigError(cause.full_key, shown, _EXPECTED.get(target, f"expected {target.lower()}"))
    if "is not Optional" in text:
        return ConfigError(cause.full_key, None, "must not be null")
    return ConfigError(cause.full_key, getattr(cause, "value", None), text)


def _literal(text: str) -> Any:
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
