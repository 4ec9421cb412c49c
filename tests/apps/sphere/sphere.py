"""A foreign Hydra app for the zoom sweeper: the sphere function x^2 + y^2 (minimum 0 at 0, 0)."""

import hydra
from omegaconf import DictConfig


@hydra.main(config_path=".", config_name="sphere", version_base="1.3")
def main(cfg: DictConfig) -> float:
    return float(cfg.x) ** 2 + float(cfg.y) ** 2

if __name__ == "__main__":
    main()
