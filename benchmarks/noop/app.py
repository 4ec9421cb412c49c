"""A no-op Hydra task: the reference for Hydra's own per-job overhead (BasicSweeper)."""

import hydra
from omegaconf import DictConfig


@hydra.main(config_path=".", config_name="noop", version_base="1.3")
def main(cfg: DictConfig) -> float:
    return 0.0


if __name__ == "__main__":
    main()
