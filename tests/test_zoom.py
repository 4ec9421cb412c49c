"""The zoom stage: shrink around the best, stay inside, respect scales, never collapse."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pipeline.search.objective import Direction, Objective
from pipeline.search.space import parse
from pipeline.search.trial import Trial
from pipeline.search.zoom import ZoomMode, ZoomPolicy, zoom
from pipeline.sweep.files import read_space, write_space
from plugins.samplers.log_random import LogRandomSampler
from plugins.samplers.random import RandomSampler

ORIGINAL = parse({
    "lr": "interval(1e-4, 1)",
    "momentum": "tag(log1m, interval(0.5, 0.999))",
    "width": "tag(log, int(interval(16, 512)))",
    "batch": "choice(32, 64, 128)",
    "x": "range(-5, 5)",
})
LOG = LogRandomSampler().scale_of


SPAN = ZoomPolicy(ZoomMode.SPAN, margin=0.1, narrow_choices=True)  # the span of the top trials, choices narrowed


def _zoom(top: list[dict], margin: float = 0.1, space=ORIGINAL, scale_of=LOG, min_width: float = 0.05):
    return zoom(space, ORIGINAL, top, policy=ZoomPolicy(ZoomMode.SPAN, margin=margin, min_width=min_width,
                                                        narrow_choices=True), scale_of=scale_of)


TOP = [
    {"lr": 0.01, "momentum": 0.9, "width": 64, "batch": "64", "x": 1},
    {"lr": 0.03, "momentum": 0.95, "width": 100, "batch": "32", "x": 2},
]


def test_shrinks_around_the_best_in_log_scale() -> None:
    lr = _zoom(TOP).dim("lr")
    # span [log 0.01, log 0.03] widened by 0.1 x the full log width (ln 1e4) on each side
    pad = 0.1 * math.log(1e4)
    assert math.log(lr.low) == pytest.approx(math.log(0.01) - pad, abs=1e-3)
    assert math.log(lr.high) == pytest.approx(math.log(0.03) + pad, abs=1e-3)
    assert lr.low < 0.01 and lr.high > 0.03 and lr.scale == "log"  # the scale decided once, now a tag


def test_same_top_under_a_linear_sampler_zooms_linearly() -> None:
    lr = _zoom(TOP, scale_of=RandomSampler().scale_of).dim("lr")
    assert lr.low == pytest.approx(max(1e-4, 0.01 - 0.1), abs=1e-9)
    assert lr.high == pytest.approx(0.03 + 0.1 * (1 - 1e-4), rel=1e-3)


def test_log1m_zooms_in_one_minus_x() -> None:
    m = _zoom(TOP).dim("momentum")
    full = math.log(0.5) - math.log(0.001)
    assert math.log(1 - m.high) == pytest.approx(math.log(0.05) - 0.1 * full, abs=2e-3)
    assert math.log(1 - m.low) == pytest.approx(math.log(0.1) + 0.1 * full, abs=2e-3)
    assert m.scale == "log1m"


def test_integers_round_outward_and_choices_keep_what_was_seen() -> None:
    z = _zoom(TOP)
    width = z.dim("width")
    assert width.integer and isinstance(width.low, int) and isinstance(width.high, int)
    pad = 0.1 * math.log(512 / 16)
    assert width.low == math.floor(64 * math.exp(-pad)) and width.high == math.ceil(100 * math.exp(pad))
    assert z.dim("batch").values == ("32", "64")


def test_range_zooms_on_positions() -> None:
    x = _zoom(TOP).dim("x")
    assert x.values == [0, 1, 2, 3]  # positions of 1 and 2, one step of margin each side


def test_stays_inside_the_original_space_at_the_edges() -> None:
    top = [{"lr": 0.99, "momentum": 0.998, "width": 512, "batch": "128", "x": 4}]
    z = _zoom(top, margin=0.5)
    for dim in z.dims:
        first = ORIGINAL.dim(dim.key)
        if hasattr(first, "low"):
            assert first.low <= dim.low < dim.high <= first.high
    assert z.dim("x").values[-1] == 4 and len(z.dim("x").values) >= 2
    lr = z.dim("lr")
    assert lr.high == 1 and lr.low < 0.99


def test_never_collapses_to_a_point() -> None:
    same = [TOP[0]] * 4
    z = _zoom(same, margin=0.0)
    lr, m, width = z.dim("lr"), z.dim("momentum"), z.dim("width")
    assert math.log(lr.high / lr.low) >= 0.05 * math.log(1e4) * 0.999
    assert math.log((1 - m.low) / (1 - m.high)) >= 0.05 * math.log(0.5 / 0.001) * 0.999
    assert width.high > width.low
    assert len(z.dim("x").values) >= 2
    # and it re-validates: the written space parses back
    assert parse(z.as_params()).dims == z.dims


def test_repeated_zoom_converges_but_keeps_the_floor() -> None:
    space = ORIGINAL
    for _ in range(10):
        space = zoom(space, ORIGINAL, [TOP[0]], policy=SPAN, scale_of=LOG)
    lr = space.dim("lr")
    assert lr.low <= 0.01 < lr.high
    assert math.log(lr.high / lr.low) == pytest.approx(0.05 * math.log(1e4), rel=0.01)


def test_the_objective_ranks_successes_only_and_keeps_ties_in_order() -> None:
    values = [3.0, None, float("nan"), 1.0, 2.0, 1.0, float("inf")]
    trials = [Trial(1, i, {}, v) for i, v in enumerate(values)]
    assert [(t.value, t.index) for t in Objective(Direction.MINIMIZE).top(trials, 3)] == [(1.0, 3), (1.0, 5), (2.0, 4)]
    assert [t.value for t in Objective(Direction.MAXIMIZE).top(trials, 2)] == [3.0, 2.0]
    assert Objective(Direction.MAXIMIZE).better(2.0, 1.0) and not Objective().better(2.0, 1.0)
    assert Objective().best([Trial(1, 0, {}, None, "boom")]) is None


def test_space_file_round_trip(tmp_path: Path) -> None:
    z = _zoom(TOP)
    path = tmp_path / "zoom" / "round_2.yaml"
    write_space(path, z, header="zoomed after round 1")
    assert path.read_text().startswith("# @package hydra.sweeper.params\n")
    assert parse(read_space(path)).dims == z.dims
    assert not list(path.parent.glob(".*.tmp"))  # atomic write leaves no temp file


def _trust(top: list[dict], shrink: float = 0.5, space=ORIGINAL):
    return zoom(space, ORIGINAL, top, policy=_trust_policy(shrink), scale_of=LOG)


def _trust_policy(shrink: float = 0.5) -> ZoomPolicy:
    return ZoomPolicy(ZoomMode.TRUST, margin=0.1, shrink=shrink, narrow_choices=True)


def test_trust_region_is_shrink_times_the_width_centred_on_the_best() -> None:
    z = _trust(TOP)  # the best is TOP[0]; the second trial's spread plays no part
    lr = z.dim("lr")
    half = 0.25 * math.log(1e4)
    assert math.log(lr.low) == pytest.approx(math.log(0.01) - half, abs=1e-3)
    assert math.log(lr.high) == pytest.approx(math.log(0.01) + half, abs=1e-3)
    m = z.dim("momentum")
    full = math.log(0.5) - math.log(0.001)
    assert math.log(1 - m.high) == pytest.approx(math.log(0.1) - full / 4, abs=2e-3)
    assert math.log(1 - m.low) == pytest.approx(math.log(0.1) + full / 4, abs=2e-3)
    assert z.dim("x").values == [-1, 0, 1, 2, 3]  # 5 of 10 positions around x=1
    assert z.dim("batch").values == ("32", "64")  # choices: what the top trials used, original order
    # and again: each round halves the width around the best
    lr2 = zoom(z, ORIGINAL, TOP, policy=_trust_policy(0.5), scale_of=LOG).dim("lr")
    assert math.log(lr2.high / lr2.low) == pytest.approx(math.log(1e4) / 4, rel=1e-3)


def test_trust_region_slides_off_a_bound_instead_of_shrinking() -> None:
    top = [{"lr": 0.9, "momentum": 0.51, "width": 500, "batch": "32", "x": -5}]
    z = _trust(top)
    lr = z.dim("lr")
    assert lr.high == 1 and math.log(lr.high / lr.low) == pytest.approx(0.5 * math.log(1e4), rel=1e-3)
    assert z.dim("momentum").low == 0.5 and z.dim("width").high == 512
    assert z.dim("x").values == [-5, -4, -3, -2, -1]


def test_bad_mode_or_shrink_is_refused() -> None:
    with pytest.raises(ValueError, match="zoom"):
        ZoomPolicy(mode="box")
    with pytest.raises(ValueError, match="shrink"):
        _trust(TOP, shrink=0.0)


def test_the_scale_is_decided_once_from_the_original_space() -> None:
    """log_random samples an untagged interval log-uniformly only when its bounds are positive; a
    zoomed interval(-5, 5) that became positive keeps the linear scale it started with."""
    space = parse({"x": "interval(-5, 5)"})
    sampler = LogRandomSampler(seed=0)
    zoomed = zoom(space, space, [{"x": 2.0}, {"x": 3.0}], policy=SPAN, scale_of=sampler.scale_of)
    x = zoomed.dim("x")
    assert x.low > 0 and x.scale == "linear" and sampler.scale_of(x) == "linear"
    draws = [t["x"] for t in sampler.sample(zoomed, 2000, stream=(1,))]
    mid = (x.low + x.high) / 2
    assert 0.45 < sum(d < mid for d in draws) / len(draws) < 0.55  # uniform, not geometric
    assert parse({"x": x.expression()}).dim("x") == x  # the written space says so too


def test_span_never_widens_the_current_interval() -> None:
    """Top trials of earlier rounds may lie outside the current interval: the span stays inside it."""
    original = parse({"w": "tag(log, int(interval(16, 512)))", "lr": "interval(0, 1)"})
    current = original.with_dims([original.dim("w").__class__("w", 30, 462, True, "log"),
                                  original.dim("lr").__class__("lr", 0.2, 0.6)])
    top = [{"w": 31, "lr": 0.25}, {"w": 500, "lr": 0.9}, {"w": 20, "lr": 0.1}]
    nxt = zoom(current, original, top, policy=SPAN, scale_of=lambda d: d.scale or "linear")
    assert 30 <= nxt.dim("w").low and nxt.dim("w").high <= 462
    assert 0.2 <= nxt.dim("lr").low and nxt.dim("lr").high <= 0.6
