"""The sampler plugin contract, run against every YAML in ``conf/sampler/``.

A new sampler (one Python file + one YAML) is covered by dropping in its two files; point
``PIPELINE_SAMPLER_DIR`` at another config directory to check samplers kept elsewhere."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from pipeline.errors import ConfigError
from pipeline.registry import build
from pipeline.search.space import Choice, Interval, Range, parse
from pipeline.search.trial import Trial
from plugins.samplers.base import Sampler, propose, sees_history
from plugins.samplers.grid import GridSampler
from tests.conftest import CONF

CONFIG_DIR = Path(os.environ.get("PIPELINE_SAMPLER_DIR", CONF / "sampler"))
YAMLS = sorted(CONFIG_DIR.glob("*.yaml"))
SPACE = parse({
    "lr": "interval(1e-4, 1)",
    "momentum": "tag(log1m, interval(0.5, 0.999))",
    "width": "tag(log, int(interval(16, 512)))",
    "depth": "int(interval(1, 4))",
    "batch": "choice(32, 64, 128)",
    "x": "range(-1.0, 1.0, step=0.5)",
})


def make(path: Path, **kwargs) -> Sampler:
    """The sampler of a YAML; skipped when it needs an optional extra that is not installed."""
    try:
        return build(OmegaConf.load(path), "sampler", **kwargs)
    except ConfigError as exc:
        if "pip install" in str(exc):
            pytest.skip(str(exc))
        raise


def test_the_shipped_samplers_are_found() -> None:
    assert CONFIG_DIR != CONF / "sampler" or {"grid", "random", "log_random"} <= {p.stem for p in YAMLS}


@pytest.fixture(params=YAMLS, ids=[p.stem for p in YAMLS])
def yaml_path(request: pytest.FixtureRequest) -> Path:
    return request.param


@pytest.mark.parametrize("n", [1, 7, 50])
def test_count_keys_types_and_bounds(yaml_path: Path, n: int) -> None:
    sampler = make(yaml_path)
    trials = sampler.sample(SPACE, n, stream=(0, 1))
    assert 1 <= len(trials) <= n
    if sampler.fills_budget:
        assert len(trials) == n
    for trial in trials:
        assert set(trial) == set(SPACE.keys)
        for dim in SPACE.dims:
            value = trial[dim.key]
            assert dim.contains(value), (dim, value)
            if isinstance(dim, Interval):
                assert isinstance(value, int) if dim.integer else isinstance(value, float)
            elif isinstance(dim, Choice):
                assert isinstance(value, str)
            elif isinstance(dim, Range):
                assert isinstance(value, float)


def test_seeded_determinism_and_independent_streams(yaml_path: Path) -> None:
    a = make(yaml_path).sample(SPACE, 20, stream=(0, 2))
    b = make(yaml_path).sample(SPACE, 20, stream=(0, 2))
    assert a == b
    if make(yaml_path).fills_budget:  # random samplers: other streams and seeds differ
        assert a != make(yaml_path).sample(SPACE, 20, stream=(1, 2))
        assert a != make(yaml_path).sample(SPACE, 20, stream=(0, 3))
        assert a != make(yaml_path, seed=1).sample(SPACE, 20, stream=(0, 2))


def test_samples_follow_the_scale(yaml_path: Path) -> None:
    """Half the mass below the midpoint *of the scale*: geometric for log, and so on."""
    sampler = make(yaml_path)
    trials = sampler.sample(SPACE, 400, stream=(5,))
    for key, mid in (("width", math.sqrt(16 * 512)), ("momentum", 1 - math.sqrt(0.5 * 0.001))):
        below = np.mean([t[key] < mid for t in trials])
        assert 0.35 < below < 0.65, (key, below)
    lr = SPACE.dim("lr")
    mid = math.sqrt(1e-4) if sampler.scale_of(lr) == "log" else 0.5
    assert 0.35 < np.mean([t["lr"] < mid for t in trials]) < 0.65


def test_bad_seed_is_refused(yaml_path: Path) -> None:
    with pytest.raises(Exception, match="seed"):
        make(yaml_path, seed=-1)


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


def history_of(sampler: Sampler, n: int = 12) -> list[Trial]:
    """Finished trials of a first round: values, one failure, one non-finite value."""
    trials = []
    for i, params in enumerate(sampler.sample(SPACE, n, stream=(0, 1))):
        value = None if i == 3 else float("nan") if i == 5 else float(i % 7)
        trials.append(Trial(1, i, params, value, "boom" if i == 3 else None))
    return trials


def test_same_seed_stream_and_history_give_the_same_proposals(yaml_path: Path) -> None:
    """Resume depends on it: a resumed round must propose what the interrupted one did."""
    history = history_of(make(yaml_path))
    a = propose(make(yaml_path), SPACE, 9, stream=(0, 2), history=history)
    b = propose(make(yaml_path), SPACE, 9, stream=(0, 2), history=list(history))
    assert a == b and 1 <= len(a) <= 9
    for trial in a:
        assert all(dim.contains(trial[dim.key]) for dim in SPACE.dims)


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
