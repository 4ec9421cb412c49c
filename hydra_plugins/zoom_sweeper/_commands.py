"""The commands a sweep prints: how to run one trial again, and how to resume the sweep. They
name the program as it was started and every ``--config-dir`` as an absolute path."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig


class Commands:
    def __init__(self, config: DictConfig, sweep_dir: Path) -> None:
        self.config = config
        self.sweep_dir = sweep_dir

    def reproduce(self, overrides: Sequence[str]) -> str:
        """A single run with the task ``overrides``."""
        return " ".join([program(), *map(shlex.quote, [*self.config_dirs(), *overrides])])

    def resume(self) -> str:
        hydra_overrides = [o for o in self.config.hydra.overrides.hydra
                           if not o.startswith(("hydra.sweep.dir=", "hydra.sweeper.resume=", "hydra.mode="))]
        args = [*self.config_dirs(), "-m", *hydra_overrides, *self.config.hydra.overrides.task,
                f"hydra.sweep.dir={self.sweep_dir.resolve()}", "hydra.sweeper.resume=true"]
        return " ".join([program(), *map(shlex.quote, args)])

    def config_dirs(self) -> list[str]:
        return [f"--config-dir={Path(s.path).resolve()}"
                for s in self.config.hydra.runtime.get("config_sources", [])
                if s.get("provider") == "command-line" and s.get("schema") == "file"]


def program() -> str:
    main = Path(sys.argv[0])
    if main.name == "__main__.py":
        return f"python -m {main.parent.name}"
    return f"python {sys.argv[0]}"
