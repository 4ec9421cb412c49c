"""Where this app's configs are: conf/ beside the package in a checkout (and an editable install),
pipeline/conf in an installed wheel (setup.py copies it there)."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parents[1]  # the pipeline package
CONF_DIR = _HERE.parent / "conf" if (_HERE.parent / "conf" / "config.yaml").is_file() else _HERE / "conf"
