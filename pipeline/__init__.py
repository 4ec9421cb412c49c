"""pipeline: numpy MLP training stages and hyperparameter sweeps with Hydra and MLflow.

The package is split by role (docs/architecture.md): ``train/`` the numpy training stage,
``search/`` the Hydra- and MLflow-free search engine, ``sweep/`` one planned sweep (settings,
runner, files, MLflow lineage, reports), ``tracking/`` one MLflow run, ``app/`` this app's Hydra
edge; ``errors``, ``atomic`` and ``registry`` are the floor every wing stands on."""

from __future__ import annotations

from pipeline import _moved

__version__ = "0.1.0"

_moved.install()  # module paths from before the split stay importable (pipeline._moved)
