"""Module paths from before the package was split into role folders (train/, search/, sweep/,
tracking/, app/), kept importable: a user's config may name ``_target_: pipeline.data.digits``,
a plugin may import ``pipeline.sampler``, a script may run ``python -m pipeline.zoom``.

Each old name is an alias of its new module (the same module object, so classes compare equal);
importing one warns once (``DeprecationWarning``) naming where it lives now. The two commands
(``pipeline.zoom``, ``pipeline.importance``) are not deprecated and do not warn. A name that is
neither here nor a real module fails as any missing module does.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType
from typing import Any

# old module -> its new home
MOVED = {
    "pipeline.config": "pipeline.train.config",
    "pipeline.nn": "pipeline.train.nn",
    "pipeline.normalization": "pipeline.train.normalization",
    "pipeline.optim": "pipeline.train.optim",
    "pipeline.kernels": "pipeline.train.kernels",
    "pipeline.data": "pipeline.train.data",
    "pipeline.checkpoint": "pipeline.train.checkpoint",
    "pipeline.predict": "pipeline.train.predict",
    "pipeline.sampler": "pipeline.search.sampler",
    "pipeline.trial": "pipeline.search.trial",
    "pipeline.objective": "pipeline.search.objective",
    "pipeline.schedule": "pipeline.search.schedule",
    "pipeline.fidelity": "pipeline.search.fidelity",
    "pipeline.export": "pipeline.app.export",
    "pipeline.callbacks": "pipeline.app.callbacks",
    "pipeline.schema": "pipeline.app.schema",
}
# commands users type (python -m <name>): aliases without a warning
COMMANDS = {
    "pipeline.zoom": "pipeline.sweep.analysis.zoom_stage",
    "pipeline.importance": "pipeline.sweep.analysis.importance",
}


class _Alias(importlib.abc.Loader):
    """Loads an old name as the module at its new path; ``get_code`` lets ``python -m`` run it."""

    def __init__(self, target: str, warn: bool) -> None:
        self.target, self.warn = target, warn

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        if self.warn:
            warnings.warn(f"{spec.name} moved to {self.target}; import it from there", DeprecationWarning,
                          stacklevel=2)
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        pass  # already executed under its new name

    def get_code(self, fullname: str) -> Any:
        spec = importlib.util.find_spec(self.target)
        assert spec is not None and spec.loader is not None
        return spec.loader.get_code(self.target)  # type: ignore[attr-defined]


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname in MOVED:
            return importlib.machinery.ModuleSpec(fullname, _Alias(MOVED[fullname], warn=True))
        if fullname in COMMANDS:
            return importlib.machinery.ModuleSpec(fullname, _Alias(COMMANDS[fullname], warn=False))
        return None


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())
