"""The search engine, free of Hydra (but for its grammar parser in space), MLflow and files:
search spaces and their scales (space), the sampler plugin contract (sampler), one shape for a
trial (trial), the objective and ranking (objective), budgets into rounds (schedule) and rungs
(fidelity), the zoom policy (zoom) and the round loop (rounds).

What a sampler plugin needs is importable from here (``from pipeline.search import SearchSpace,
Sampler, Trial``), loaded on first use; ``pipeline.search.parse`` and the space types keep the
names they had when this package was the space module."""

from __future__ import annotations

from typing import Any

_PUBLIC = {
    **dict.fromkeys(("SearchSpace", "Interval", "Choice", "Range", "Dimension", "Scale", "SCALES", "parse",
                     "decode", "encode", "discrete_values", "to_unit", "from_unit", "unit_bounds", "quote",
                     "check_dimension"), "space"),
    **dict.fromkeys(("Sampler", "uniform", "propose", "sees_history"), "sampler"),
    **dict.fromkeys(("Trial", "Outcome", "finite", "latest"), "trial"),
    **dict.fromkeys(("Objective", "Direction", "History", "one_fidelity"), "objective"),
    **dict.fromkeys(("ZoomPolicy", "ZoomMode"), "zoom"),
}


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(f"pipeline.search.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'pipeline.search' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
