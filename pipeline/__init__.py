"""pipeline: numpy MLP training stages and hyperparameter sweeps with Hydra and MLflow."""

__version__ = "0.1.0"
