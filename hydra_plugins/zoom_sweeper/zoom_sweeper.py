"""Thin Hydra ``Sweeper``: settings in, everything else in ``_impl`` (imported on use)."""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class ZoomSweeper(Sweeper):
    """Coarse-to-fine search: sample a round, launch it, zoom onto the best, repeat."""

    def __init__(self, **settings: Any) -> None:
        from hydra_plugins.zoom_sweeper._impl import ZoomSweeperImpl

        self.sweeper = ZoomSweeperImpl(**settings)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        return self.sweeper.sweep(arguments)
