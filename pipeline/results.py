"""Files a sweep leaves behind, written atomically (temp file + rename) so a crash never leaves
half a file: each trial's ``result.json`` in its job directory, and the sweep's YAML files."""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

RESULT_FILE = "result.json"
METRICS_FILE = "metrics.json"


def write_text_atomic(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    write_text_atomic(path, json.dumps(_jsonable(data), indent=2, sort_keys=True) + "\n")


def write_yaml_atomic(path: Path, data: Any) -> None:
    import yaml

    write_text_atomic(path, yaml.safe_dump(_jsonable(data), sort_keys=False, width=120))


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


class RecordingTask:
    """Wraps a Hydra task function: after the job, ``result.json`` in its output directory says
    whether it finished, its return value and its error. Picklable for process launchers."""

    def __init__(self, task_function: Callable[[Any], Any]) -> None:
        self.task_function = task_function

    def __call__(self, cfg: Any) -> Any:
        from hydra.core.hydra_config import HydraConfig

        out = Path(HydraConfig.get().runtime.output_dir)
        started = time.time()
        record: dict[str, Any] = {"started": started, "overrides": list(HydraConfig.get().overrides.task)}
        try:
            value = self.task_function(cfg)
        except BaseException as exc:
            logging.getLogger("pipeline.sweep").error(f"trial {out.name} failed: {type(exc).__name__}: {exc}")
            record.update(status="failed", error=f"{type(exc).__name__}: {exc}",
                          traceback=traceback.format_exc(limit=20), seconds=time.time() - started)
            write_json_atomic(out / RESULT_FILE, record)
            raise
        record.update(status="completed", value=_as_number(value), seconds=time.time() - started)
        write_json_atomic(out / RESULT_FILE, record)
        return value


def _as_number(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return repr(value)
