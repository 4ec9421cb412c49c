"""MLflow tracking for one training stage: lazy import, one run, batched writes.

``import mlflow`` costs seconds and every store call costs milliseconds on SQLite, so a stage
imports MLflow only when tracking is on, logs all params in one batch, buffers per-epoch metrics
and flushes them at most every ``flush_interval_s`` seconds (and at the end), so points reach
the store while the run is going without one write per value.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from pipeline.errors import ConfigError
from pipeline.tracking.store import (
    default_artifact_location,
    ensure_experiment,
    open_sqlite_store,
    probe_server,
    resolve_uri,
    sqlite_path,
    tune_sqlite_store,
)

MAX_PARAM_VALUE = 6000  # MLflow's limit on a param value's length
MAX_EXPERIMENT_NAME = 500  # MLflow's experiments.name column
MAX_BATCH_METRICS = 800  # MLflow takes 1000 entities per log_batch: room for 100 params + tags
MAX_BATCH_PARAMS = 100
_EXPERIMENTS: dict[tuple[str, str], str] = {}  # (uri, name) -> experiment id, per process


class Tracker(Protocol):
    """One training stage's run, as the stage uses it (:class:`MlflowTracker`; :class:`NullTracker`
    with tracking off). ``seconds``: time spent in store calls; ``import_seconds``: MLflow's import."""

    uri: str | None
    run_id: str | None
    seconds: float
    import_seconds: float

    def start(self, params: Mapping[str, Any], tags: Mapping[str, str]) -> None: ...

    def resume(self, run_id: str, tags: Mapping[str, str], key: str) -> int: ...

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None: ...

    def log_artifacts(self, local_dir: Path) -> None: ...

    def log_dataset(self, dataset: Mapping[str, str], context: str) -> None: ...

    def artifact_dir(self) -> Path | None: ...

    def end(self, status: str = "FINISHED", tags: Mapping[str, str] | None = None) -> None: ...


class NullTracker:
    """``tracking.enabled=false``: every call is a no-op."""

    run_id: str | None = None
    seconds = 0.0
    import_seconds = 0.0
    uri = None

    def start(self, params: Mapping[str, Any], tags: Mapping[str, str]) -> None:
        pass

    def resume(self, run_id: str, tags: Mapping[str, str], key: str) -> int:
        raise RuntimeError("tracking is off: there is no run to continue")

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        pass

    def log_artifacts(self, local_dir: Path) -> None:
        pass

    def log_dataset(self, dataset: Mapping[str, str], context: str) -> None:
        pass

    def artifact_dir(self) -> Path | None:
        return None

    def end(self, status: str = "FINISHED", tags: Mapping[str, str] | None = None) -> None:
        pass


class MlflowTracker:
    """One MLflow run, written through ``MlflowClient`` (no global fluent state).

    ``seconds`` is the wall time spent in store calls; ``import_seconds`` the one-time import.
    """

    def __init__(
        self,
        uri: str,
        experiment: str,
        *,
        run_name: str | None = None,
        parent_run_id: str | None = None,
        flush_interval_s: float = 2.0,
    ) -> None:
        self.uri = uri
        self.experiment = experiment
        self.run_name = run_name
        self.parent_run_id = parent_run_id
        self.flush_interval_s = flush_interval_s
        self.run_id: str | None = None
        self.seconds = 0.0
        self.import_seconds = 0.0
        self._pending: list[Any] = []
        self._params: list[Any] = []
        self._ended = False
        self._last_flush = 0.0
        self._client: Any = None

    def _connect(self) -> Any:
        t0 = time.perf_counter()
        from mlflow.tracking import MlflowClient  # noqa: F401 - the import timed on its own

        self.import_seconds = time.perf_counter() - t0
        return connect(self.uri)

    def attach(self, run_id: str) -> None:
        """Continue an existing run (a resumed sweep's parent): it is set back to RUNNING."""
        self._client = self._connect()
        self.run_id = run_id
        self._client.update_run(run_id, status="RUNNING")
        self._last_flush = time.perf_counter()

    def resume(self, run_id: str, tags: Mapping[str, str], key: str) -> int:
        """Continue trial run ``run_id`` (a checkpointed trial trained further): RUNNING again,
        ``tags`` updated (e.g. its rung); returns the last step logged for metric ``key``."""
        self.attach(run_id)
        t0 = time.perf_counter()
        history = self._client.get_metric_history(run_id, key)
        self.set_tags(tags)
        self.artifact_uri = self._client.get_run(run_id).info.artifact_uri
        self.seconds += time.perf_counter() - t0
        return max((m.step for m in history), default=0)

    def start(self, params: Mapping[str, Any], tags: Mapping[str, str]) -> None:
        client = self._client = self._connect()
        t0 = time.perf_counter()
        key = (self.uri, self.experiment)
        if key not in _EXPERIMENTS:  # one look-up per process (a sweep runs many trials in one)
            _EXPERIMENTS[key] = ensure_experiment(client, self.experiment, default_artifact_location(self.uri))
        run_tags = {**default_tags(), **tags}
        if self.parent_run_id:
            run_tags["mlflow.parentRunId"] = self.parent_run_id
        run = client.create_run(_EXPERIMENTS[key], run_name=self.run_name, tags=run_tags)
        self.run_id = run.info.run_id
        self.artifact_uri = run.info.artifact_uri
        from mlflow.entities import Param

        # sent with the first flush of metrics (at the latest when the run ends): one write less
        self._params = [Param(k, _param_value(v)) for k, v in params.items()]
        self._last_flush = time.perf_counter()
        self.seconds += self._last_flush - t0

    def log_dataset(self, dataset: Mapping[str, str], context: str) -> None:
        """The run's input data set (``name``, ``digest``, ``source_type``, ``source``,
        ``schema``, ``profile``: MLflow's Dataset fields), used as ``context`` ("training")."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        t0 = time.perf_counter()
        entity = DatasetInput(Dataset(**dataset), tags=[InputTag("mlflow.data.context", context)])
        self._client.log_inputs(self.run_id, datasets=[entity])
        self.seconds += time.perf_counter() - t0

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now_ms = int(time.time() * 1000)
        self._pending += [Metric(k, float(v), now_ms, step) for k, v in metrics.items()]
        if time.perf_counter() - self._last_flush >= self.flush_interval_s:
            self.flush()

    def flush(self, tags: Mapping[str, str] | None = None) -> None:
        """Write buffered metrics (and ``tags``) in as few ``log_batch`` calls as MLflow allows."""
        if self.run_id is None or not (self._pending or tags or self._params):
            return
        from mlflow.entities import RunTag

        t0 = time.perf_counter()
        pending, self._pending = self._pending, []
        params, self._params = self._params, []
        run_tags = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
        calls = max(math.ceil(len(pending) / MAX_BATCH_METRICS), math.ceil(len(params) / MAX_BATCH_PARAMS), 1)
        for i in range(calls):
            self._client.log_batch(self.run_id,
                                   metrics=pending[i * MAX_BATCH_METRICS:(i + 1) * MAX_BATCH_METRICS],
                                   params=params[i * MAX_BATCH_PARAMS:(i + 1) * MAX_BATCH_PARAMS],
                                   tags=run_tags if i == 0 else [])
        self._last_flush = time.perf_counter()
        self.seconds += self._last_flush - t0

    def log_artifacts(self, local_dir: Path) -> None:
        if self.run_id is None:
            return
        t0 = time.perf_counter()
        self._client.log_artifacts(self.run_id, str(local_dir))
        self.seconds += time.perf_counter() - t0

    def artifact_dir(self) -> Path | None:
        """The run's artifact folder when the store keeps artifacts on this file system (files
        written there are the run's artifacts: no temporary copy), else ``None``."""
        uri = getattr(self, "artifact_uri", None) or ""
        if not uri.startswith("file://"):
            return None
        from urllib.parse import unquote, urlparse

        path = Path(unquote(urlparse(uri).path))
        path.mkdir(parents=True, exist_ok=True)
        return path

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        """Upload one file, under ``artifact_path`` (a folder in the run's artifacts)."""
        if self.run_id is None:
            return
        t0 = time.perf_counter()
        self._client.log_artifact(self.run_id, str(path), artifact_path)
        self.seconds += time.perf_counter() - t0

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.flush(tags={k: str(v) for k, v in tags.items()})

    def end(self, status: str = "FINISHED", tags: Mapping[str, str] | None = None) -> None:
        """Flush what is buffered, add ``tags`` and close the run with ``status`` (once)."""
        if self.run_id is None or self._ended:
            return
        self._ended = True
        t0 = time.perf_counter()
        try:
            self.flush(tags)
        except BaseException:  # e.g. Ctrl-C during the last write: never FINISHED without its metrics
            self._client.set_terminated(self.run_id, status="KILLED" if status == "FINISHED" else status)
            raise
        self._client.set_terminated(self.run_id, status=status)
        self.seconds += time.perf_counter() - t0


def connect(uri: str) -> Any:
    """An ``MlflowClient`` of the store at ``uri``; a SQLite store is tuned, and created or
    migrated by one process at a time (pipeline.tracking.store)."""
    from mlflow.tracking import MlflowClient

    db = sqlite_path(uri)
    if db is None:
        return MlflowClient(tracking_uri=uri)
    db.parent.mkdir(parents=True, exist_ok=True)
    tune_sqlite_store(db)
    return open_sqlite_store(db, lambda: MlflowClient(tracking_uri=uri))


def default_tags() -> dict[str, str]:
    """What MLflow's fluent API would set (the UI's Source and User columns)."""
    import getpass
    import sys

    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "pipeline"
    source = "python -m pipeline" if program == "__main__.py" else program
    try:
        user = getpass.getuser()
    except Exception:  # no user name in some containers
        user = "unknown"
    return {"mlflow.source.name": source, "mlflow.source.type": "LOCAL", "mlflow.user": user}


def _param_value(value: Any) -> str:
    text = "null" if value is None else str(value)
    return text if len(text) <= MAX_PARAM_VALUE else text[: MAX_PARAM_VALUE - 3] + "..."


def make_tracker(
    tracking_cfg: Mapping[str, Any], launch_dir: str | None = None
) -> MlflowTracker | NullTracker:
    """Build the tracker for ``cfg.tracking``; validates the URI without importing MLflow."""
    if not tracking_cfg.get("enabled", True):
        return NullTracker()
    uri = resolve_uri(tracking_cfg.get("uri"), launch_dir)
    if uri.startswith(("http://", "https://")):
        probe_server(uri)
    experiment = tracking_cfg.get("experiment")
    if not isinstance(experiment, str) or not experiment.strip():
        raise ConfigError("tracking.experiment", experiment, "must be a non-empty name")
    if len(experiment) > MAX_EXPERIMENT_NAME:
        raise ConfigError("tracking.experiment", experiment[:40] + "...", f"longer than MLflow's "
                          f"{MAX_EXPERIMENT_NAME} characters ({len(experiment)})")
    interval = tracking_cfg.get("flush_interval_s", 2.0)
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval < 0:
        raise ConfigError("tracking.flush_interval_s", interval, "must be a number >= 0")
    return MlflowTracker(
        uri, experiment,
        run_name=tracking_cfg.get("run_name"),
        parent_run_id=tracking_cfg.get("parent_run_id"),
        flush_interval_s=float(interval),
    )


def tags_for(choices: Mapping[str, str], extra: Iterable[tuple[str, Any]] = ()) -> dict[str, str]:
    """Run tags: the chosen plugin per group plus ``extra`` (e.g. a sweep's round)."""
    tags = {group: str(name) for group, name in choices.items()}
    tags.update({k: str(v) for k, v in extra})
    return tags
