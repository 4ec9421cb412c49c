"""``python -m pipeline [overrides]``: one training stage; ``-m`` runs a sweep."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from pipeline.atomic import write_json_atomic
from pipeline.errors import ConfigError
from pipeline.sweep_dir import METRICS_FILE


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    """Train one model; return the objective (``objective.metric``) for sweepers."""
    from pipeline.progress import EpochProgress
    from pipeline.train import run

    hydra_cfg = HydraConfig.get()
    single = hydra_cfg.mode != RunMode.MULTIRUN  # a sweep shows its own progress
    shown = EpochProgress(int(cfg.trainer.epochs), enabled=single and not cfg.get("quiet", False))
    try:
        result = run(cfg, choices=dict(hydra_cfg.runtime.choices), progress=shown)
    except ConfigError as exc:
        if hydra_cfg.mode == RunMode.MULTIRUN:
            raise  # a sweep records the failed trial and carries on
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(2)
    # the job directory keeps every final metric (held-out test included) for sweeps to read
    write_json_atomic(Path(hydra_cfg.runtime.output_dir) / METRICS_FILE, {
        "objective": result.objective, "metrics": result.metrics, "run_id": result.run_id})
    return result.objective


# Hydra flags that take the next argument as their value (not an override).
_VALUE_FLAGS = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--package", "-p",
                "--cfg", "-c", "--info", "-i", "--experimental-rerun"}


def check_overrides(argv: list[str]) -> None:
    """Parse the command-line overrides with Hydra's own parser before Hydra does, so a
    malformed one gets this project's one-line error naming its key and value."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    skip = False
    for arg in argv:
        if skip or arg.startswith("-"):
            skip = arg in _VALUE_FLAGS
            continue
        if "=" not in arg:
            continue
        try:
            parser.parse_override(arg)
        except HydraException as exc:
            key, _, value = arg.partition("=")
            reason = " ".join(str(exc).split("\n")[1:2]).strip() or str(exc).splitlines()[0]
            reason = reason.removeprefix("ValueError while evaluating ")
            print(f"Error: {ConfigError(key, value, f'malformed override: {reason}')}", file=sys.stderr)
            sys.exit(2)


if __name__ == "__main__":
    check_overrides(sys.argv[1:])
    main()
