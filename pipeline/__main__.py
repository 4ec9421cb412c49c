"""``python -m pipeline [overrides]``: one training stage; ``-m`` runs a sweep."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from pipeline.errors import ConfigError
from pipeline.results import METRICS_FILE, write_json_atomic


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    """Train one model; return the objective (``objective.metric``) for sweepers."""
    from pipeline.train import run

    hydra_cfg = HydraConfig.get()
    try:
        result = run(cfg, choices=dict(hydra_cfg.runtime.choices))
    except ConfigError as exc:
        if hydra_cfg.mode == RunMode.MULTIRUN:
            raise  # a sweep records the failed trial and carries on
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(2)
    # the job directory keeps every final metric (held-out test included) for sweeps to read
    write_json_atomic(Path(hydra_cfg.runtime.output_dir) / METRICS_FILE, {
        "objective": result.objective, "metrics": result.metrics, "run_id": result.run_id})
    return result.objective


if __name__ == "__main__":
    main()
