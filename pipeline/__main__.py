"""``python -m pipeline [overrides]``: one training stage; ``-m`` runs a sweep."""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from pipeline.errors import ConfigError


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    """Train one model; return the objective (``objective.metric``) for sweepers."""
    from pipeline.train import run

    hydra_cfg = HydraConfig.get()
    try:
        return run(cfg, choices=dict(hydra_cfg.runtime.choices)).objective
    except ConfigError as exc:
        if hydra_cfg.mode == RunMode.MULTIRUN:
            raise  # a sweep records the failed trial and carries on
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
