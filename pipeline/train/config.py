"""Validation of the task config, before any data is loaded or anything is logged."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pipeline.errors import ConfigError

# Metrics a trial reports every epoch; the objective must be one of them. test_* is held out
# and reported only, so it can never be an objective.
OBJECTIVE_METRICS = ("val_loss", "val_acc", "train_loss", "train_acc")
DIRECTIONS = ("minimize", "maximize")
DTYPES = ("float32", "float64")


def _positive_int(cfg: DictConfig, key: str) -> int:
    value = OmegaConf.select(cfg, key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(key, value, "must be a positive integer")
    return value


def validate(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` for the first bad value of the training-stage config."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(missing[0], "???", f"required value is missing: set it, e.g. {missing[0]}=...")
    for group in ("data", "model", "normalization", "optimizer", "trainer", "objective"):
        if not isinstance(cfg.get(group), DictConfig):
            raise ConfigError(group, cfg.get(group), "missing config group/section")
    _positive_int(cfg, "trainer.epochs")
    _positive_int(cfg, "trainer.batch_size")
    _positive_int(cfg, "model.width")
    depth = cfg.model.get("depth")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ConfigError("model.depth", depth, "must be an integer >= 0")
    if cfg.model.get("dtype") not in DTYPES:
        raise ConfigError("model.dtype", cfg.model.get("dtype"), f"must be one of {list(DTYPES)}")
    timeout = cfg.trainer.get("timeout_s")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ConfigError("trainer.timeout_s", timeout, "must be a positive number of seconds (or null)")
    seed = cfg.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError("seed", seed, "must be an integer >= 0")
    metric = cfg.objective.get("metric")
    if metric not in OBJECTIVE_METRICS:
        held_out = str(metric).startswith("test_")
        hint = " (test metrics are held out and never used to choose)" if held_out else ""
        raise ConfigError("objective.metric", metric, f"must be one of {list(OBJECTIVE_METRICS)}{hint}")
    direction = cfg.objective.get("direction")
    if direction not in DIRECTIONS:
        raise ConfigError("objective.direction", direction, f"must be one of {list(DIRECTIONS)}")


def flatten(node: Mapping[str, Any] | DictConfig, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``{'a': {'b': 1}}`` -> ``('a.b', 1)``; lists are kept as values."""
    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=True)
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if value:
                yield from flatten(value, dotted + ".")
            else:
                yield dotted, {}
        else:
            yield dotted, value
