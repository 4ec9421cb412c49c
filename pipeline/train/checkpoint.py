"""A training stage's checkpoint: what continuing a trial needs to train on exactly as if it had
never stopped (weights, optimizer buffers, normalization state, the shuffling RNG, the epochs so
far and their metrics, and the MLflow run to extend). One ``.npz`` file, written atomically after
every epoch, so a trial promoted to more epochs, or killed and resumed, trains only the epochs it
has not trained yet; the result is the same bit for bit as training them all in one go.

A fingerprint of the config (everything but the epochs, where results go and how they are shown)
guards against continuing a different trial's checkpoint.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from pipeline.atomic import write_bytes_atomic
from pipeline.train.config import flatten

CHECKPOINT_FILE = "checkpoint.npz"
# not part of what a trial is: its length (the fidelity), where it continues from, how it is shown
# and logged, and its wall-clock limit
NOT_FINGERPRINTED = ("trainer.epochs", "trainer.resume_from", "trainer.timeout_s", "trainer.blas_threads",
                     "tracking", "quiet", "sampler")


@dataclass
class Checkpoint:
    epoch: int
    weights: np.ndarray
    optimizer: dict[str, np.ndarray]
    norms: list[dict[str, np.ndarray]]
    rng: dict[str, Any]
    history: list[dict[str, float]]
    fingerprint: str
    run: dict[str, str] = field(default_factory=dict)  # MLflow: {"uri": ..., "run_id": ...}


def path_in(directory: str | Path) -> Path:
    """The checkpoint file of a trial that keeps its state in ``directory``."""
    return Path(directory) / CHECKPOINT_FILE


def fingerprint(cfg: DictConfig) -> str:
    items = [(k, v) for k, v in flatten(cfg) if not k.startswith(NOT_FINGERPRINTED)]
    return hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode()).hexdigest()[:16]


def save(path: Path, ckpt: Checkpoint) -> None:
    arrays: dict[str, np.ndarray] = {"weights": ckpt.weights}
    arrays.update({f"optimizer.{k}": np.asarray(v) for k, v in ckpt.optimizer.items()})
    for i, state in enumerate(ckpt.norms):
        arrays.update({f"norm{i}.{k}": v for k, v in state.items()})
    meta = {"epoch": ckpt.epoch, "rng": ckpt.rng, "history": ckpt.history, "fingerprint": ckpt.fingerprint,
            "run": ckpt.run, "norms": len(ckpt.norms)}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes_atomic(path, buffer.getvalue())


def load(path: Path) -> Checkpoint:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(data["meta"].tobytes().decode())
        arrays = {k: data[k] for k in data.files if k != "meta"}
    optimizer = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("optimizer.")}
    norms = [{k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith(f"norm{i}.")}
             for i in range(meta["norms"])]
    return Checkpoint(meta["epoch"], arrays["weights"], optimizer, norms, meta["rng"], meta["history"],
                      meta["fingerprint"], meta.get("run", {}))
