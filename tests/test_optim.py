"""Optimizer updates against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.testing.gradients import assert_close
from pipeline.train.optim import SGD, Adam


def _one_param(value: float, grad: float) -> tuple[dict, dict]:
    return {"w": np.array([value])}, {"w": np.array([grad])}


def test_sgd_momentum_pytorch_form() -> None:
    params, grads = _one_param(1.0, 0.5)
    opt = SGD([(params, grads)], lr=0.1, momentum=0.9)
    opt.step()  # v = 0.5; w = 1 - 0.05
    assert params["w"][0] == pytest.approx(0.95)
    grads["w"][0] = 1.0
    opt.step()  # v = 0.9 * 0.5 + 1 = 1.45; w = 0.95 - 0.145
    assert params["w"][0] == pytest.approx(0.805)


def test_sgd_weight_decay() -> None:
    params, grads = _one_param(2.0, 0.0)
    SGD([(params, grads)], lr=0.5, momentum=0.0, weight_decay=0.1).step()
    assert params["w"][0] == pytest.approx(2.0 - 0.5 * 0.2)


def test_adam_matches_the_textbook_update() -> None:
    params, grads = _one_param(1.0, 0.0)
    opt = Adam([(params, grads)], lr=0.01, beta1=0.9, beta2=0.99, eps=1e-8)
    w, m, v = 1.0, 0.0, 0.0
    for t, g in enumerate([0.3, -0.1, 0.7], start=1):
        grads["w"][0] = g
        opt.step()
        m = 0.9 * m + 0.1 * g
        v = 0.99 * v + 0.01 * g * g
        w -= 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.99**t)) + 1e-8)
        assert params["w"][0] == pytest.approx(w, rel=1e-12)


def test_updates_every_array_in_place() -> None:
    a = {"W": np.ones((2, 2)), "b": np.ones(2)}
    ga = {"W": np.full((2, 2), 1.0), "b": np.full(2, 2.0)}
    opt = SGD([(a, ga)], lr=0.1, momentum=0.0)
    assert np.shares_memory(a["W"], opt.w) and np.shares_memory(ga["b"], opt.g)  # one flat buffer each
    opt.step()
    assert_close(a["W"], np.full((2, 2), 0.9))
    assert_close(a["b"], np.full(2, 0.8))


@pytest.mark.parametrize("cls, kwargs, word", [
    (SGD, {"lr": 0.0}, "lr"), (SGD, {"lr": -1.0}, "lr"), (SGD, {"momentum": 1.0}, "momentum"),
    (Adam, {"beta1": 1.0}, "beta1"), (Adam, {"beta2": -0.5}, "beta2"), (Adam, {"eps": 0.0}, "eps"),
])
def test_bad_hyperparameters_are_refused(cls, kwargs: dict, word: str) -> None:
    params, grads = _one_param(1.0, 1.0)
    with pytest.raises(ValueError, match=word):
        cls([(params, grads)], **kwargs)
