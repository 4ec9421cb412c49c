"""Where MLflow runs are kept: the tracking URI (checked without importing MLflow), the SQLite
store's tuning and one-process-at-a-time creation, a server's liveness, the experiment."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pipeline.atomic import can_create_in, nearest_existing
from pipeline.errors import ConfigError, TrackingUnavailable

DEFAULT_DB = Path("outputs") / "mlflow.db"
PROBE_TIMEOUT_S = 5.0


def resolve_uri(uri: str | None, launch_dir: str | os.PathLike[str] | None = None, *, key: str = "tracking.uri") -> str:
    """The tracking URI: ``uri`` as given, or SQLite at ``<launch_dir>/outputs/mlflow.db``.

    A URI carrying a user name or password is refused: credentials belong in MLflow's
    environment variables, never in a config value that is logged and saved.
    """
    if uri is None or uri == "":
        base = Path(launch_dir) if launch_dir is not None else Path.cwd()
        return f"sqlite:///{(base / DEFAULT_DB).resolve()}"
    if not isinstance(uri, str):
        raise ConfigError(key, uri, "must be a string URI")
    parts = urlsplit(uri)
    if parts.username is not None or parts.password is not None:
        redacted = parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[-1]).geturl()
        raise ConfigError(
            key, redacted,
            "credentials in the tracking URI are refused (they would be logged and saved). "
            "For an MLflow server set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD "
            "(or MLFLOW_TRACKING_TOKEN) in the environment; for a database URI use the "
            "driver's own mechanism (e.g. PGPASSWORD or ~/.pgpass).",
        )
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in URI_SCHEMES:
        raise ConfigError(key, uri, f"not a tracking URI MLflow can use (schemes: {', '.join(sorted(URI_SCHEMES))})")
    if scheme in ("postgresql", "mysql", "mssql"):
        _check_driver(uri, key)
    db = sqlite_path(uri)
    if db is not None:
        existing = nearest_existing(db)
        if existing != db.absolute() and not can_create_in(existing):
            raise ConfigError(key, uri, f"the store cannot be created: {existing} is not a writable directory")
        if db.exists() and (db.is_dir() or not os.access(db, os.R_OK | os.W_OK)):
            raise ConfigError(key, uri, "not a readable and writable SQLite file")
    return uri


URI_SCHEMES = {"sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks", "databricks-uc", "file"}


def _check_driver(uri: str, key: str) -> None:
    """The database driver a SQL URI needs is installed (SQLAlchemy's dialect imports it)."""
    from sqlalchemy.engine import make_url

    try:
        make_url(uri).get_dialect().import_dbapi()
    except ImportError as exc:
        raise ConfigError(key, uri, f"its database driver is not installed ({exc}); install it (e.g. psycopg2-binary "
                          "for postgresql, pymysql for mysql+pymysql) or use sqlite:///path") from None
    except Exception as exc:  # a malformed URL
        raise ConfigError(key, uri, f"not a valid database URL ({exc})") from None


def probe_server(uri: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Fail fast when nothing answers at an ``http(s)://`` tracking URI: MLflow's own client
    retries for minutes. Any HTTP answer counts (a proxy may not expose ``/health``)."""
    import urllib.error
    import urllib.request

    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingUnavailable("tracking.uri", uri, f"no MLflow server answers at {url} within {timeout:g} s "
                                  f"({reason}); start one (mlflow server ...), fix tracking.uri, or set "
                                  "tracking.enabled=false") from None


_FAST_STORES: set[str] = set()


def tune_sqlite_store(db: Path) -> None:
    """Every connection this process opens to the SQLite store ``db`` from now on (MLflow's
    included) runs in WAL mode (persistent in the file: readers no longer block the writer, which
    parallel trials need) with ``synchronous=NORMAL``: commits no longer wait for an fsync (about
    a fifth of a trial's tracking time here). In WAL mode that is still safe from corruption; a
    power cut, not a crash, may lose the last commits. A busy store keeps SQLite's defaults."""
    _FAST_STORES.add(os.path.realpath(db))
    _listen_for_connections()


@functools.cache
def _listen_for_connections() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    event.listen(Engine, "connect", _on_connect)


def _on_connect(dbapi_conn: Any, _record: Any) -> None:
    import sqlite3

    if not isinstance(dbapi_conn, sqlite3.Connection):
        return
    try:
        files = {row[2] for row in dbapi_conn.execute("PRAGMA database_list") if row[1] == "main"}
        if files & _FAST_STORES and dbapi_conn.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() == "wal":
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.Error:  # busy: this connection keeps SQLite's defaults
        pass


_OPENED: set[str] = set()


def open_sqlite_store(db: Path, make_client: Callable[[], Any]) -> Any:
    """A client of SQLite store ``db``; the first in this process is made and used under an
    exclusive lock on ``<db>.lock``, so creating or migrating a store (MLflow runs alembic when it
    first opens one) is done by one process at a time. Two sweeps started together on a new store
    otherwise both create its tables ("table ... already exists"), and an interrupted migration
    can leave it unusable."""
    import fcntl
    import logging

    key = os.path.realpath(db)
    if key in _OPENED:
        return make_client()
    for name in ("mlflow.store.db.utils", "alembic.runtime.migration"):  # "Creating initial MLflow database tables"
        logging.getLogger(name).setLevel(logging.WARNING)
    with open(f"{db}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            client = make_client()
            client.search_experiments(max_results=1)  # creates or migrates the tables if needed
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    _OPENED.add(key)
    return client


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, else ``None``."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):])


def default_artifact_location(uri: str) -> str | None:
    """For a SQLite store, artifacts go beside the database in ``mlartifacts/``; a server
    decides for itself."""
    db = sqlite_path(uri)
    if db is None:
        return None
    return (db.resolve().parent / "mlartifacts").as_uri()


# MLflow 3's UI opens an experiment on its GenAI views unless the experiment says it holds
# training runs (or the link carries ?workflowType=machine_learning, pipeline.sweep.report.ui_page).
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def ensure_experiment(client: Any, name: str, artifact_location: str | None) -> str:
    """The id of experiment ``name``, creating it once (safe when another process races us),
    marked as holding training runs unless it already says what it holds."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            raise ConfigError("tracking.experiment", name,
                              "this experiment is deleted in the store; restore it or pick another name")
        if not set(EXPERIMENT_KIND) & set(experiment.tags):
            for key, value in EXPERIMENT_KIND.items():
                client.set_experiment_tag(experiment.experiment_id, key, value)
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location, tags=EXPERIMENT_KIND)
    except MlflowException:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


