"""The commands a sweep prints: how to run one trial again, and how to resume the sweep. They
name the program as it was started, and every config directory given on the command line
(``--config-dir``, ``hydra.searchpath=[file://...]``) as an absolute path, so both work from
any directory."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

# Hydra overrides a command rebuilds itself (the sweep's own directory and mode, the search
# path), matched with or without a leading + or ++.
_REBUILT = ("hydra.sweep.dir=", "hydra.sweeper.resume=", "hydra.mode=", "hydra.searchpath=")


class Commands:
    def __init__(self, config: DictConfig, sweep_dir: Path) -> None:
        self.config = config
        self.sweep_dir = sweep_dir

    def reproduce(self, overrides: Sequence[str]) -> str:
        """A single run with the task ``overrides``."""
        return " ".join([program(), *map(shlex.quote, [*self.config_dirs(), *self.searchpath(), *overrides])])

    def resume(self) -> str:
        hydra_overrides = [o for o in self.config.hydra.overrides.hydra if not o.lstrip("+").startswith(_REBUILT)]
        args = [*self.config_dirs(), "-m", *self.searchpath(), *hydra_overrides, *self.config.hydra.overrides.task,
                f"hydra.sweep.dir={self.sweep_dir.resolve()}", "hydra.sweeper.resume=true"]
        return " ".join([program(), *map(shlex.quote, args)])

    def config_dirs(self) -> list[str]:
        return [f"--config-dir={Path(s.path).resolve()}"
                for s in self.config.hydra.runtime.get("config_sources", [])
                if s.get("provider") == "command-line" and s.get("schema") == "file"]

    def searchpath(self) -> list[str]:
        """``hydra.searchpath=[...]`` as given on the command line, ``file://`` entries made
        absolute against the directory the sweep was started from; nothing if it was not given."""
        given = [o for o in self.config.hydra.overrides.hydra if o.lstrip("+").startswith("hydra.searchpath=")]
        if not given:
            return []
        cwd = Path(self.config.hydra.runtime.cwd)
        entries = [_absolute(str(p), cwd) for p in self.config.hydra.searchpath]
        return [f"hydra.searchpath=[{','.join(entries)}]"]


def _absolute(entry: str, cwd: Path) -> str:
    if not entry.startswith("file://"):
        return entry  # pkg:// and structured sources do not depend on the directory
    return f"file://{(cwd / entry.removeprefix('file://')).resolve()}"


def program() -> str:
    """``python -m <package>``, the console command as typed (its name if ``PATH`` finds the same
    file, else its path), or ``python <script>``."""
    main = Path(sys.argv[0])
    if main.name == "__main__.py":
        return f"python -m {main.parent.name}"
    if main.suffix != ".py" and os.access(main, os.X_OK):  # a console script such as `pipeline`
        found = shutil.which(main.name)
        return main.name if found and Path(found).resolve() == main.resolve() else shlex.quote(str(main.resolve()))
    return f"python {shlex.quote(sys.argv[0])}"
