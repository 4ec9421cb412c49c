"""Atomic file writes (temp file + fsync + rename), so a crash never leaves half a file, and the
matching tolerant JSON reader."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def can_create_in(directory: Path) -> bool:
    """Whether a directory can be made in ``directory`` (tried and removed at once: permission
    bits say yes to root on read-only and pseudo file systems)."""
    try:
        os.rmdir(tempfile.mkdtemp(dir=directory, prefix=".pipeline-check-"))
        return True
    except OSError:
        return False


def nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists."""
    path = Path(path).absolute()
    return next(p for p in (path, *path.parents) if p.exists())


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
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
