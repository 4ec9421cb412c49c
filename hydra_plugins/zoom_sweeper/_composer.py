"""Composes a trial's task config with Hydra's own config loader (pipeline.sweep.plan.Composer)."""

from __future__ import annotations

from collections.abc import Sequence

from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf

from pipeline.errors import ConfigError, as_config_error


class HydraComposer:
    def __init__(self, hydra_context: HydraContext, config: DictConfig) -> None:
        self.loader = hydra_context.config_loader
        self.config = config

    def compose(self, overrides: Sequence[str]) -> tuple[DictConfig, dict[str, str]]:
        """The task config for ``overrides`` (without the ``hydra`` node) and Hydra's chosen
        option per config group."""
        from hydra.errors import HydraException

        try:
            cfg = self.loader.load_sweep_config(self.config, list(overrides))
        except HydraException as exc:
            message = str(exc).splitlines()[0]
            raise as_config_error(exc) or ConfigError("overrides", " ".join(overrides),
                                                      f"cannot compose: {message}") from None
        choices = {str(k): str(v) for k, v in cfg.hydra.runtime.choices.items()}
        return OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), choices
