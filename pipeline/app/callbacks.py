"""Hydra callback: a single run's config is checked before Hydra makes its run directory, so a
refused run leaves nothing behind (``hydra.callbacks.check`` in conf/config.yaml)."""

from __future__ import annotations

import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict


class CheckBeforeRun(Callback):
    """``on_run_start`` runs in ``python -m pipeline`` (not ``-m``: the sweeper checks every
    combination itself) after composing and before the run directory exists."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra.core.hydra_config import HydraConfig

        from pipeline.errors import ConfigError
        from pipeline.train.stage import check

        HydraConfig.instance().set_config(config)  # as the job will have it (hydra: resolvers)
        task = config.copy()  # the app's config, as the task gets it: without the hydra node
        with open_dict(task):
            task.pop("hydra", None)
        try:
            check(task)
        except ConfigError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            sys.exit(2)
