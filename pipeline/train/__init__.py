"""The numpy training stage: ``run(cfg)`` trains one MLP (stage), built from its parts: the
network and its layers (nn), the normalization plugin contract (normalization), optimizers
(optim), fused kernels (kernels), data sets (data), checkpoints (checkpoint), a trained model
read back (predict), the config's checks (config) and the epoch progress bar (progress).

Never imports the search engine or the sweep. ``pipeline.train.run`` and ``pipeline.train.check``
(the sweeper's ``check`` hook) are the stage's public names, loaded on first use."""

from __future__ import annotations

from typing import Any

_PUBLIC = {"run": "stage", "check": "stage", "prepare": "stage", "Result": "stage"}


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(f"pipeline.train.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'pipeline.train' has no attribute {name!r}")
