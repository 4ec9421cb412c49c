"""``python -m pipeline [overrides]``: one training stage; ``-m`` runs a sweep."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from pipeline.app.blas import choose_openblas_kernels
from pipeline.app.cli import check_overrides, report_config_errors_in_one_line
from pipeline.app.conf import CONF_DIR
from pipeline.app.resolvers import register
from pipeline.atomic import write_json_atomic
from pipeline.errors import ConfigError
from pipeline.sweep.files import METRICS_FILE

# None of the imports above loads numpy: the kernel choice still takes effect, here and in the
# sweep's worker processes, which inherit it (tests/test_blas_choice.py).
choose_openblas_kernels()
register()  # the schema and resolver conf/config.yaml composes with

# An absolute path: Hydra reads it as a directory however the app was started (`python -m pipeline`
# or the `pipeline` command, whose module Hydra would otherwise look up as a package).
CONFIG_PATH = str(CONF_DIR)


@hydra.main(config_path=CONFIG_PATH, config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    """Train one model; return the objective (``objective.metric``) for sweepers."""
    from pipeline.train import run
    from pipeline.train.progress import EpochProgress

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
    except BaseException as exc:  # a failed trial keeps the id of its MLflow run for the sweep's records
        if getattr(exc, "run_id", None):
            write_json_atomic(Path(hydra_cfg.runtime.output_dir) / METRICS_FILE, {
                "objective": None, "metrics": {}, "run_id": exc.run_id})
        raise
    # the job directory keeps every final metric (held-out test included) for sweeps to read
    write_json_atomic(Path(hydra_cfg.runtime.output_dir) / METRICS_FILE, {
        "objective": result.objective, "metrics": result.metrics, "run_id": result.run_id})
    return result.objective


def cli() -> None:
    """``python -m pipeline`` and the ``pipeline`` command: the same thing."""
    check_overrides(sys.argv[1:])
    report_config_errors_in_one_line()
    main()


if __name__ == "__main__":
    cli()
