"""The training stage: ``run(cfg)`` trains one MLP and returns its metrics.

No Hydra globals here, so tests and the sweeper can call it directly with a composed config.
Order matters for bad input: validate the config, check the tracking URI, load the data and
build the model *before* an MLflow run is created, so an error leaves nothing behind.
"""

from __future__ import annotations

import functools
import math
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from pipeline.errors import ConfigError, TrainingDiverged, TrialPruned, TrialTimeout, infrastructure
from pipeline.registry import build
from pipeline.tracking.tracker import Tracker, make_tracker, tags_for
from pipeline.train import checkpoint
from pipeline.train.config import flatten, validate
from pipeline.train.data import Dataset
from pipeline.train.nn import MLP, softmax_cross_entropy
from pipeline.train.optim import Optimizer
from pipeline.train.progress import EpochProgress

EVAL_CHUNK = 4096


@dataclass
class Result:
    """What a training stage hands back: the objective and every final metric."""

    objective: float
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    run_id: str | None = None
    seconds: float = 0.0
    tracking_seconds: float = 0.0
    tracking_import_seconds: float = 0.0


def evaluate(model: MLP, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` in evaluation mode on ``X`` (N, d), ``y`` (N,)."""
    loss_sum, correct = 0.0, 0
    for start in range(0, len(X), EVAL_CHUNK):
        xb, yb = X[start:start + EVAL_CHUNK], y[start:start + EVAL_CHUNK]
        logits = model.forward(xb, training=False)
        loss, _ = softmax_cross_entropy(logits, yb)
        loss_sum += loss * len(xb)
        correct += int((logits.argmax(axis=1) == yb).sum())
    return loss_sum / len(X), correct / len(X)


def batches(n: int, batch_size: int, min_batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """A fresh permutation of ``range(n)`` cut into mini-batches; a last partial batch smaller
    than ``min_batch_size`` is dropped (batch norm cannot normalize a single sample)."""
    perm = rng.permutation(n)
    out = [perm[i:i + batch_size] for i in range(0, n, batch_size)]
    if out and len(out[-1]) < min_batch_size:
        out.pop()
    return out


def build_model(cfg: DictConfig, data: Dataset, rng: np.random.Generator) -> MLP:
    dtype = np.dtype(cfg.model.dtype)
    make_norm = functools.partial(build, cfg.normalization, "normalization", dtype=dtype)
    return MLP(
        data.n_features, data.n_classes,
        width=cfg.model.width, depth=cfg.model.depth,
        make_norm=lambda n: make_norm(num_features=n), rng=rng, dtype=dtype,
    )


def choices_from(cfg: DictConfig) -> dict[str, str]:
    """Fallback plugin names when Hydra's runtime choices are not available."""
    out = {}
    for group in ("data", "normalization", "optimizer"):
        target = OmegaConf.select(cfg, f"{group}._target_") or ""
        out[group] = target.rsplit(".", 1)[-1]
    return out


@dataclass
class Stage:
    """Everything a training stage needs, built and checked before anything is logged."""

    data: Dataset
    model: MLP
    optimizer: Optimizer
    tracker: Tracker
    rng: np.random.Generator  # mini-batch order
    keep: Path | None = None  # trainer.resume_from: where the checkpoint lives
    resumed: checkpoint.Checkpoint | None = None  # the state restored from it
    fingerprint: str = ""  # of the config, stored with the checkpoint

    def save(self, history: list[dict[str, float]]) -> None:
        """Write the checkpoint after an epoch (when ``trainer.resume_from`` is set)."""
        if self.keep is None:
            return
        tracker = self.tracker
        run = {"uri": str(tracker.uri), "run_id": tracker.run_id} if tracker.run_id else {}
        checkpoint.save(checkpoint.path_in(self.keep), checkpoint.Checkpoint(
            len(history), self.optimizer.w, self.optimizer.state(), [n.state() for n in self.model.norms],
            self.rng.bit_generator.state, history, self.fingerprint, run))


def prepare(cfg: DictConfig) -> Stage:
    """Validate ``cfg``, check the tracking URI (and that a server answers), load the data,
    check the batch size against it, build the model and optimizer, and restore the checkpoint
    in ``trainer.resume_from`` if there is one. Raises :class:`ConfigError` naming the key and
    value; writes nothing."""
    validate(cfg)
    tracker = make_tracker(cfg.get("tracking") or {})
    dtype = np.dtype(cfg.model.dtype)
    seq_init, seq_shuffle = np.random.SeedSequence(cfg.seed).spawn(2)
    data: Dataset = build(cfg.data, "data", dtype=dtype)
    n_train = len(data.X_train)
    if cfg.trainer.batch_size > n_train:
        raise ConfigError("trainer.batch_size", cfg.trainer.batch_size,
                          f"larger than the training set ({n_train} samples of {data.name})")
    _check_memory(cfg, data)
    model = build_model(cfg, data, np.random.default_rng(seq_init))
    if cfg.trainer.batch_size < model.min_batch_size:
        raise ConfigError("trainer.batch_size", cfg.trainer.batch_size, f"below the smallest mini-batch the "
                          f"normalization takes ({model.min_batch_size})")
    optimizer = build(cfg.optimizer, "optimizer", objects={"params": model.parameters()})
    stage = Stage(data, model, optimizer, tracker, np.random.default_rng(seq_shuffle))
    keep = cfg.trainer.get("resume_from")
    if keep is not None:
        stage.keep, stage.fingerprint = Path(str(keep)), checkpoint.fingerprint(cfg)
        stage.resumed = _restore(cfg, stage)
    return stage


def _check_memory(cfg: DictConfig, data: Dataset) -> None:
    """Refuse a network that cannot fit in memory before building it (numpy would fail on its
    first weight matrix, or the machine would swap): parameters, gradients and two optimizer
    buffers, plus the activations of the largest evaluation chunk, against MemAvailable."""
    width, depth, itemsize = int(cfg.model.width), int(cfg.model.depth), np.dtype(cfg.model.dtype).itemsize
    params = data.n_features * width + max(depth - 1, 0) * width * width + width * data.n_classes + 3 * depth * width
    activations = min(len(data.X_train) + len(data.X_val), EVAL_CHUNK) * width * max(depth, 1) * 4
    need = (4 * params + activations) * itemsize
    available = _available_memory()
    if available is not None and need > available:
        raise ConfigError("model.width", width, f"a {depth} x {width} network needs ~{need / 2**30:.1f} GiB "
                          f"(weights, gradients, optimizer state, activations), more than the "
                          f"{available / 2**30:.1f} GiB available")


def _available_memory() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _restore(cfg: DictConfig, stage: Stage) -> checkpoint.Checkpoint | None:
    """Put the checkpoint in ``stage.keep`` (if any) into the model, optimizer and RNG."""
    assert stage.keep is not None
    if stage.keep.exists() and not stage.keep.is_dir():
        raise ConfigError("trainer.resume_from", str(stage.keep), "is a file; give the directory to keep the "
                          "checkpoint in")
    path = checkpoint.path_in(stage.keep)
    if not path.exists():
        return None
    try:
        ckpt = checkpoint.load(path)
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError("trainer.resume_from", str(stage.keep), f"unreadable checkpoint ({exc})") from exc
    if ckpt.fingerprint != stage.fingerprint:
        raise ConfigError("trainer.resume_from", str(stage.keep), "holds the checkpoint of another configuration "
                          "(only trainer.epochs may differ)")
    if ckpt.epoch > cfg.trainer.epochs:
        raise ConfigError("trainer.epochs", cfg.trainer.epochs, f"is below the {ckpt.epoch} epochs already "
                          f"trained in trainer.resume_from={stage.keep}")
    stage.optimizer.w[...] = ckpt.weights
    stage.optimizer.load_state(ckpt.optimizer)
    for norm, state in zip(stage.model.norms, ckpt.norms, strict=True):
        norm.load_state(state)
    stage.rng.bit_generator.state = ckpt.rng
    return ckpt


def check(cfg: DictConfig) -> None:
    """Every check :func:`run` makes before training, without training or logging: the sweeper
    calls it on each combination before launching anything (``hydra.sweeper.check``)."""
    prepare(cfg)


def run(cfg: DictConfig, *, choices: Mapping[str, str] | None = None, verbose: bool = True,
        progress: EpochProgress | None = None,
        on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> Result:
    """Train and evaluate one model as configured; log it to MLflow unless disabled.
    ``progress`` shows each epoch (the command line passes one for single runs).

    ``on_epoch(epoch, metrics)`` is called after every epoch's metrics are logged (and its
    checkpoint written); raising :class:`pipeline.errors.TrialPruned` there stops the trial as
    pruned. With ``trainer.resume_from`` the trial continues from the checkpoint kept there and
    extends that checkpoint's MLflow run; ``trainer.epochs`` is then its fidelity, logged as the
    metric ``epochs`` instead of a param (it changes from one continuation to the next)."""
    t_start = time.perf_counter()
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=int(cfg.trainer.get("blas_threads", 1) or 1), user_api="blas"):
        stage = prepare(cfg)
        tracker = stage.tracker
        chosen = dict(choices) if choices else choices_from(cfg)
        extra_tags = (cfg.get("tracking") or {}).get("tags") or {}
        tags = tags_for({k: chosen[k] for k in ("data", "normalization", "optimizer") if k in chosen},
                        extra_tags.items())
        history = _start_run(cfg, stage, tags)
        try:
            return _train(cfg, stage, history, chosen, on_epoch, progress, verbose, t_start)
        except BaseException as exc:  # the failed trial's run, for the sweep's records
            exc.run_id = tracker.run_id  # type: ignore[attr-defined]
            raise


def _train(cfg: DictConfig, stage: Stage, history: list[dict[str, float]], chosen: Mapping[str, str],
           on_epoch: Callable[[int, dict[str, float]], None] | None, progress: EpochProgress | None,
           verbose: bool, t_start: float) -> Result:
    """:func:`run` after its MLflow run started: the epochs, the test metrics, the artifacts."""
    model, tracker = stage.model, stage.tracker

    def after_epoch(epoch: int, metrics: dict[str, float]) -> None:
        stage.save(history)
        shown.update(epoch, metrics)
        if on_epoch is not None:
            on_epoch(epoch, metrics)

    try:
        with progress or EpochProgress(cfg.trainer.epochs, enabled=False) as shown:
            _fit(cfg, model, stage.optimizer, stage.data, tracker, stage.rng, deadline=_deadline(cfg, t_start),
                 on_epoch=after_epoch, history=history)
        test_loss, test_acc = evaluate(model, stage.data.X_test, stage.data.y_test)
        final = {**history[-1], "test_loss": test_loss, "test_acc": test_acc}
        ends = {"test_loss": test_loss, "test_acc": test_acc}
        if stage.keep is not None:
            ends["epochs"] = float(cfg.trainer.epochs)
        tracker.log_metrics(ends, step=cfg.trainer.epochs)
        _log_artifacts(cfg, stage)
    except BaseException as exc:
        tracker.end(*_ending(exc))
        raise
    tracker.end("FINISHED")

    objective = float(final[cfg.objective.metric])
    result = Result(
        objective=objective, metrics=final, history=history, run_id=tracker.run_id,
        seconds=time.perf_counter() - t_start, tracking_seconds=tracker.seconds,
        tracking_import_seconds=tracker.import_seconds,
    )
    if verbose:
        print(summary_line(cfg, chosen, result), file=sys.stdout, flush=True)
    return result


def _log_artifacts(cfg: DictConfig, stage: Stage) -> None:
    """The trial's config and weights as its run's artifacts."""
    tracker = stage.tracker
    local = tracker.artifact_dir()
    if local is not None:  # a file store: write straight into the run's artifacts
        t0 = time.perf_counter()
        _write_artifacts(local, cfg, stage.model, stage.data)
        tracker.seconds += time.perf_counter() - t0
    elif tracker.run_id is not None:
        with tempfile.TemporaryDirectory() as tmp:
            _write_artifacts(Path(tmp), cfg, stage.model, stage.data)
            tracker.log_artifacts(Path(tmp))


def _ending(exc: BaseException) -> tuple[str, dict[str, str]]:
    """The status and tags a trial's run ends with when ``exc`` stopped it."""
    if isinstance(exc, TrainingDiverged):
        return "FAILED", {"failure_reason": "non-finite loss", "failed_epoch": exc.epoch, "failure_detail": str(exc)}
    if isinstance(exc, TrialTimeout):
        return "FAILED", {"failure_reason": "timeout", "failed_epoch": exc.epoch, "failure_detail": str(exc)}
    if isinstance(exc, TrialPruned):
        return "KILLED", {"pruned": "true", "pruned_epoch": str(exc.epoch), "failure_reason": str(exc)}
    if isinstance(exc, KeyboardInterrupt):
        return "KILLED", {"failure_reason": "interrupted"}
    # the store's fault, not the trial's (the sweep runs it again): KILLED, never FAILED
    status = "KILLED" if infrastructure(exc) else "FAILED"
    return status, {"failure_reason": type(exc).__name__, "failure_detail": str(exc)[:5000]}


def _start_run(cfg: DictConfig, stage: Stage, tags: Mapping[str, str]) -> list[dict[str, float]]:
    """Start the trial's MLflow run, or extend the one its checkpoint names (same store): the
    epochs the checkpoint holds but the run lacks (buffered when a process died) are logged, the
    ones it has are not logged twice. Returns the metrics of the epochs trained so far."""
    tracker, ckpt = stage.tracker, stage.resumed
    history = list(ckpt.history) if ckpt else []
    run = ckpt.run if ckpt else {}
    if run.get("run_id") and tracker.uri is not None and run.get("uri") == str(tracker.uri):
        logged = tracker.resume(run["run_id"], tags, "val_loss")
        for epoch, metrics in enumerate(history[logged:], start=logged + 1):
            tracker.log_metrics(metrics, step=epoch)
    else:
        tracker.start(trial_params(cfg), tags)
        tracker.log_dataset(stage.data.mlflow_input(), "training")
        for epoch, metrics in enumerate(history, start=1):
            tracker.log_metrics(metrics, step=epoch)
    return history


def _deadline(cfg: DictConfig, t_start: float) -> float | None:
    limit = cfg.trainer.get("timeout_s")
    return None if limit is None else t_start + float(limit)


def _fit(
    cfg: DictConfig, model: MLP, optimizer: Optimizer, data: Dataset, tracker: Tracker,
    rng: np.random.Generator, deadline: float | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    history: list[dict[str, float]] | None = None,
) -> list[dict[str, float]]:
    """The epoch loop after the epochs already in ``history`` (a continued trial); appends one
    metrics dict per epoch (also sent to ``tracker``) and returns ``history``."""
    history = [] if history is None else history
    for epoch in range(len(history) + 1, cfg.trainer.epochs + 1):
        # overflow on the way to a non-finite loss is expected; the loss check reports it
        with np.errstate(over="ignore", invalid="ignore"):
            train_loss, train_acc = _train_epoch(cfg, model, optimizer, data, rng, epoch, deadline)
            val_loss, val_acc = evaluate(model, data.X_val, data.y_val)
        metrics = {"train_loss": train_loss, "train_acc": train_acc, "val_loss": val_loss, "val_acc": val_acc}
        for i, norm in enumerate(model.norms):
            for key, value in norm.metrics().items():
                metrics[f"{norm.metric_prefix}/layer{i}/{key}"] = value
        history.append(metrics)
        tracker.log_metrics(metrics, step=epoch)
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    return history


def _train_epoch(
    cfg: DictConfig, model: MLP, optimizer: Optimizer, data: Dataset, rng: np.random.Generator, epoch: int,
    deadline: float | None = None,
) -> tuple[float, float]:
    """One pass over reshuffled mini-batches; returns the batches' mean loss and accuracy.
    ``deadline`` (``time.perf_counter()`` value) is checked after every mini-batch."""
    X, y = data.X_train, data.y_train
    loss_sum, correct, seen = 0.0, 0, 0
    for idx in batches(len(X), cfg.trainer.batch_size, model.min_batch_size, rng):
        xb, yb = X[idx], y[idx]
        logits = model.forward(xb, training=True)
        loss, dlogits = softmax_cross_entropy(logits, yb)
        if not math.isfinite(loss):
            raise TrainingDiverged(epoch, loss)
        model.backward(dlogits)
        optimizer.step()
        if deadline is not None and time.perf_counter() > deadline:
            raise TrialTimeout(epoch, float(cfg.trainer.timeout_s))
        loss_sum += loss * len(idx)
        correct += int((logits.argmax(axis=1) == yb).sum())
        seen += len(idx)
    return loss_sum / seen, correct / seen


def _write_artifacts(directory: Path, cfg: DictConfig, model: MLP, data: Dataset) -> None:
    import yaml

    # the same text as OmegaConf.to_yaml(cfg, resolve=True), through libyaml: 0.3 ms instead of 1.2
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text = yaml.dump(OmegaConf.to_container(cfg, resolve=True), Dumper=dumper, sort_keys=False, allow_unicode=True)
    (directory / "config.yaml").write_text(text)
    np.savez(directory / "model.npz", **dict(model.named_arrays()), **preprocessing(data))


def preprocessing(data: Dataset) -> dict[str, np.ndarray]:
    """What turns raw rows into the model's input and its outputs into labels, saved beside the
    weights (pipeline.train.predict reads them back): ``input.mean``, ``input.std``, ``labels``."""
    return {"input.mean": data.mean, "input.std": data.std, "labels": data.labels}


# Config sections that are not the trial's parameters: where results go, how progress is shown,
# and the sweep's sampler (recorded on the sweep's runs). config.yaml keeps everything.
NOT_PARAMS = ("tracking", "quiet", "sampler")


def trial_params(cfg: DictConfig) -> dict[str, object]:
    """The flattened config logged as the MLflow run's params (``optimizer.lr``, ...), without
    ``trainer.resume_from`` (where the checkpoint lives, not what is trained) and, when that is
    set, without ``trainer.epochs`` (it grows as the run is continued: a metric then)."""
    continued = cfg.trainer.get("resume_from") is not None
    skip = {"trainer.resume_from", *(["trainer.epochs"] if continued else [])}
    return {k: v for k, v in flatten(cfg) if k.split(".", 1)[0] not in NOT_PARAMS and k not in skip}


def summary_line(cfg: DictConfig, chosen: Mapping[str, str], r: Result) -> str:
    m = r.metrics
    parts = [
        f"{chosen.get('data', '?')}/{chosen.get('normalization', '?')}/{chosen.get('optimizer', '?')}",
        f"{cfg.trainer.epochs} epochs",
        f"train_loss={m['train_loss']:.4f}",
        f"val_loss={m['val_loss']:.4f} val_acc={m['val_acc']:.4f}",
        f"test_acc={m['test_acc']:.4f} (held out)",
        f"{cfg.objective.metric}={r.objective:.6g} ({cfg.objective.direction})",
        f"{r.seconds:.2f}s",
    ]
    if r.run_id:
        parts.append(f"mlflow run {r.run_id} (tracking {r.tracking_seconds:.2f}s"
                     f" + import {r.tracking_import_seconds:.2f}s)")
    return " | ".join(parts)
