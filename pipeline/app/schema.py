"""The types of this app's config: structured-config dataclasses registered in Hydra's
ConfigStore as ``pipeline_schema``, the first entry of ``conf/config.yaml``'s defaults list, so
Hydra checks every value's type when it composes (YAML, overrides, sweeps alike). Range checks
(positive, one of ...) stay in :mod:`pipeline.train.config`; :func:`pipeline.errors.as_config_error`
turns OmegaConf's multi-line type errors into this project's one line naming the key and value.

The plugin groups (data, normalization, optimizer, sampler) are open: each plugin's constructor
checks its own parameters (pipeline.registry)."""

# No `from __future__ import annotations`: OmegaConf reads these annotations at run time.
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

SCHEMA_NAME = "pipeline_schema"


@dataclass
class TrainerConf:
    epochs: int = 20
    batch_size: int = 64
    blas_threads: int = 1
    timeout_s: Optional[float] = None
    resume_from: Optional[str] = None


@dataclass
class ModelConf:
    width: int = 128
    depth: int = 2
    dtype: str = "float32"


@dataclass
class ObjectiveConf:
    metric: str = "val_loss"
    direction: str = "minimize"


@dataclass
class TrackingConf:
    enabled: bool = True
    uri: Optional[str] = None
    experiment: str = "pipeline"
    run_name: Optional[str] = None
    parent_run_id: Optional[str] = None
    tags: Dict[str, Any] = field(default_factory=dict)
    flush_interval_s: float = 2.0


@dataclass
class PipelineConf:
    seed: int = 0
    quiet: bool = False
    trainer: TrainerConf = field(default_factory=TrainerConf)
    model: ModelConf = field(default_factory=ModelConf)
    objective: ObjectiveConf = field(default_factory=ObjectiveConf)
    tracking: TrackingConf = field(default_factory=TrackingConf)
    data: Any = None
    normalization: Any = None
    optimizer: Any = None
    sampler: Any = None


def register() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=SCHEMA_NAME, node=PipelineConf, provider="pipeline")
