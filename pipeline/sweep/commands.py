"""The commands a sweep prints: how to run one trial again, and how to resume the sweep. They
name the program as it was started and every config directory given on its command line as an
absolute path, so both work from any directory. Hydra-free: what the command line held comes in
as lists (hydra_plugins/zoom_sweeper/_commands.py reads them off Hydra's config)."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Hydra overrides a command rebuilds itself (the sweep's own directory and mode, the search
# path), matched with or without a leading + or ++.
REBUILT = ("hydra.sweep.dir=", "hydra.sweeper.resume=", "hydra.mode=", "hydra.searchpath=")


@dataclass(frozen=True)
class Commands:
    program: str  # python -m pipeline, pipeline, python my_app.py
    launch: tuple[str, ...]  # what is not an override: --config-dir=<absolute>, ...
    searchpath: tuple[str, ...]  # hydra.searchpath=[...] as given, file:// entries absolute; or nothing
    hydra_overrides: tuple[str, ...]  # the sweep's hydra.* overrides
    task_overrides: tuple[str, ...]  # the sweep's task overrides (its search expressions)
    sweep_dir: Path

    def reproduce(self, overrides: Sequence[str]) -> str:
        """A single run with the task ``overrides``."""
        return " ".join([self.program, *map(shlex.quote, [*self.launch, *self.searchpath, *overrides])])

    def resume(self) -> str:
        kept = [o for o in self.hydra_overrides if not o.lstrip("+").startswith(REBUILT)]
        args = [*self.launch, "-m", *self.searchpath, *kept, *self.task_overrides,
                f"hydra.sweep.dir={self.sweep_dir.resolve()}", "hydra.sweeper.resume=true"]
        return " ".join([self.program, *map(shlex.quote, args)])


def absolute(entry: str, cwd: Path) -> str:
    """A search path entry with a ``file://`` path made absolute against ``cwd``."""
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
