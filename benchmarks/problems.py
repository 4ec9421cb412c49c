"""Problems of the search benchmark, written as search spaces a user would write (Hydra's override
grammar; untagged intervals left to the sampler's default scale) and fixed before any policy was
tuned. The test functions' ``f`` returns the regret (the value minus the known global minimum); the
trained problems' ``f`` trains this app's MLP on its default search space and returns the
trial's validation loss, ``inf`` for a trial that diverged (a failed trial)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from pipeline.search.space import SearchSpace, parse


@dataclass(frozen=True)
class Problem:
    name: str
    space: SearchSpace
    f: Callable[[Mapping[str, Any]], float]
    trained: bool = False  # trains a network per trial (~0.2-0.8 s), not a closed-form function
    overrides: tuple[str, ...] = ()  # a trained problem's config (data, normalization)


def _branin(x1: float, x2: float) -> float:
    return ((x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10 - 0.397887)


_HART_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8],
                    [17, 8, 0.05, 10, 0.1, 14]])
_HART_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                           [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_HART_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def _hartmann6(x: np.ndarray) -> float:
    return float(-np.sum(_HART_ALPHA * np.exp(-np.sum(_HART_A * (x - _HART_P) ** 2, axis=1)))) + 3.32237


def _rosenbrock(x: np.ndarray) -> float:
    return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


ACKLEY_SHIFT = np.array([5.1, -3.7, 8.2, -11.3, 2.9])  # the optimum moved off-centre


def _ackley(x: np.ndarray) -> float:
    z = x - ACKLEY_SHIFT
    d = len(z)
    return float(-20 * math.exp(-0.2 * math.sqrt(np.sum(z**2) / d)) - math.exp(np.sum(np.cos(2 * math.pi * z)) / d)
                 + 20 + math.e)


def _levy(x: np.ndarray) -> float:
    w = 1 + (x - 1) / 4
    return float(math.sin(math.pi * w[0]) ** 2
                 + np.sum((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(math.pi * w[:-1] + 1) ** 2))
                 + (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2))


def _vector(p: Mapping[str, Any], keys: list[str]) -> np.ndarray:
    return np.array([float(p[k]) for k in keys])


SHAPES = ("s0", "s1", "s2", "s3", "s4", "s5")  # branin_choice: only s3 adds no penalty
X = [f"x{i}" for i in range(6)]

PROBLEMS = {p.name: p for p in [
    Problem("branin", parse({"x1": "interval(-5, 10)", "x2": "interval(0, 15)"}),
            lambda p: _branin(p["x1"], p["x2"])),
    Problem("hartmann6", parse({k: "interval(0, 1)" for k in X}), lambda p: _hartmann6(_vector(p, X))),
    Problem("rosenbrock4", parse({"x0": "interval(-2.048, 2.048)", "x1": "interval(-2.048, 2.048)",
                                  "x2": "int(interval(-2, 2))", "x3": "int(interval(-2, 2))"}),
            lambda p: _rosenbrock(_vector(p, X[:4]))),
    Problem("ackley5", parse({k: "interval(-32.768, 32.768)" for k in X[:5]}), lambda p: _ackley(_vector(p, X[:5]))),
    Problem("levy4", parse({"x0": "interval(-10, 10)", "x1": "interval(-10, 10)", "x2": "interval(-10, 10)",
                            "x3": "int(interval(-10, 10))"}), lambda p: _levy(_vector(p, X[:4]))),
    Problem("branin_choice", parse({"x1": "interval(-5, 10)", "x2": "interval(0, 15)",
                                    "shape": f"choice({', '.join(SHAPES)})"}),
            lambda p: _branin(p["x1"], p["x2"]) + (0.0 if p["shape"] == "s3" else 5.0 + SHAPES.index(p["shape"]))),
    Problem("log_decades", parse({"lr": "tag(log, interval(1e-5, 1e-1))", "x": "interval(0, 1)"}),
            lambda p: (math.log10(p["lr"]) + 3.3) ** 2 + 2 * (p["x"] - 0.2) ** 2),
]}


ROOT = Path(__file__).resolve().parents[1]


def default_space() -> SearchSpace:
    """This app's default search space, read from conf/config.yaml (lr untagged)."""
    params = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "config.yaml").hydra.sweeper.params)
    return parse(params)


def train(problem: Problem, params: Mapping[str, Any], *extra: str,
          on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> float:
    """Train ``problem``'s network with ``params`` (and ``extra`` overrides, e.g. the epochs and
    a checkpoint directory); its validation loss, ``inf`` when training diverged."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from pipeline.errors import TrainingDiverged
    from pipeline.train.stage import run

    overrides = [*problem.overrides, "tracking.enabled=false", "quiet=true", *problem.space.overrides(dict(params)),
                 *extra]
    if GlobalHydra.instance().is_initialized():
        cfg = compose("config", overrides)
    else:  # Hydra's global state is left as found
        with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
            cfg = compose("config", overrides)
    try:
        return float(run(cfg, verbose=False, on_epoch=on_epoch).objective)
    except TrainingDiverged:
        return math.inf


def _trained(name: str, overrides: list[str]) -> Problem:
    holder: list[Problem] = []
    problem = Problem(name, default_space(), lambda params: train(holder[0], params), trained=True,
                      overrides=tuple(overrides))
    holder.append(problem)
    return problem


TRAINED = {p.name: p for p in [
    _trained("digits_batch_norm", ["data=digits", "normalization=batch_norm"]),
    _trained("digits_none", ["data=digits", "normalization=none"]),
    _trained("spirals_batch_norm", ["data=synthetic", "normalization=batch_norm"]),
]}
