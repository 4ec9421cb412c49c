"""The sampler plugin contract (pipeline.testing.sampler, the suite shipped for plugin authors)
over every YAML in ``conf/sampler/``, and what the contract promises beyond one plugin: the grid's
layout rule, and samplers written before ``history`` existed keep working.
``PIPELINE_SAMPLER_DIR`` points the suite elsewhere."""

from __future__ import annotations

import pytest

from pipeline.search.sampler import Sampler, propose, sees_history
from pipeline.search.space import parse
from pipeline.testing.sampler import *  # noqa: F403 - the suite's tests and fixture, collected here
from pipeline.testing.sampler import SPACE, history_of
from plugins.samplers.grid import GridSampler


def test_grid_rule_cell_centres_in_each_scale() -> None:
    grid = GridSampler()
    lin = parse({"a": "interval(0, 1)"}).dims[0]
    assert grid.axis(lin, 4) == pytest.approx([0.125, 0.375, 0.625, 0.875])
    log = parse({"a": "tag(log, interval(1e-4, 1))"}).dims[0]
    assert grid.axis(log, 4) == pytest.approx([10**-3.5, 10**-2.5, 10**-1.5, 10**-0.5])
    ints = parse({"a": "int(interval(1, 3))"}).dims[0]
    assert grid.axis(ints, 10) == [1, 2, 3]  # never more points than integers


def test_grid_fills_the_budget_with_the_cartesian_product() -> None:
    space = parse({"a": "interval(0, 1)", "b": "interval(0, 1)", "c": "choice(x, y)"})
    sampler = GridSampler()
    points = sampler.sample(space, 18)
    assert len(points) == 18  # 2 choices x 3 x 3
    assert {p["c"] for p in points} == {"x", "y"}
    assert sorted({p["a"] for p in points}) == pytest.approx([1 / 6, 0.5, 5 / 6])
    assert len({(p["a"], p["b"], p["c"]) for p in points}) == 18
    assert "fewer than the budget" not in " ".join(sampler.notes)


def test_grid_cut_by_the_budget_is_reported() -> None:
    sampler = GridSampler()
    space = parse({"x": "range(-5.5, 5.5, step=0.5)", "y": "choice(-5, 0, 5)"})
    points = sampler.sample(space, 8)
    assert len(points) == 8
    assert sampler.notes == ["grid of 66 points cut to the budget of 8 (evenly spaced)"]


class OldStyleSampler(Sampler):
    """A plugin written for the contract without history: ``sample(space, n, *, stream)``."""

    def sample(self, space, n, *, stream=()):  # noqa: ANN001, ANN202 - the old signature, as users wrote it
        rng = self.rng(*stream)
        return [{d.key: self.values(d, rng.random(1))[0] for d in space.dims} for _ in range(n)]


class HistorySampler(Sampler):
    """Proposes the best trial so far again, to prove it was handed the history."""

    def sample(self, space, n, *, stream=(), history=()):  # noqa: ANN001, ANN202
        best = min((t for t in history if t.ok), key=lambda t: t.value)
        return [dict(best.params) for _ in range(n)]


def test_old_style_samplers_keep_working_and_new_ones_see_the_history() -> None:
    history = history_of(OldStyleSampler(seed=1))
    assert not sees_history(OldStyleSampler()) and sees_history(HistorySampler())
    old = propose(OldStyleSampler(seed=1), SPACE, 4, stream=(0, 2), history=history)
    assert len(old) == 4 and old == OldStyleSampler(seed=1).sample(SPACE, 4, stream=(0, 2))
    new = propose(HistorySampler(), SPACE, 2, stream=(0, 2), history=history)
    assert new == [history[0].params] * 2  # value 0.0 is the best; the failure and NaN are skipped
