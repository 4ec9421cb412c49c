"""Search spaces in Hydra's override grammar: parsing, validation, scales and endpoints."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import ConfigError
from pipeline.search.space import Choice, Interval, Range, parse
from plugins.samplers.grid import GridSampler
from plugins.samplers.log_random import LogRandomSampler
from plugins.samplers.random import RandomSampler


def test_parse_every_kind_of_entry() -> None:
    space = parse(
        {"optimizer.lr": "tag(log, interval(1e-4, 1))", "model.width": "int(interval(16, 512))",
         "trainer.batch_size": "choice(16, 32, 64)", "x": "range(-5.5, 5.5, step=0.5)"},
        ["normalization=batch_norm,none", "trainer.epochs=5", "+extra.key=1"],
    )
    lr, width, batch, x = space.dims
    assert lr == Interval("optimizer.lr", 1e-4, 1.0, False, "log", "optimizer.lr")
    assert width.integer and (width.low, width.high, width.scale) == (16, 512, None)
    assert isinstance(batch, Choice) and batch.values == ("16", "32", "64")
    assert isinstance(x, Range) and x.values[:3] == [-5.5, -5.0, -4.5] and x.values[-1] == 5.0
    assert space.crossed == (("normalization", ("batch_norm", "none")),)
    assert space.fixed == ("trainer.epochs=5", "+extra.key=1")
    assert space.combinations() == [["normalization=batch_norm"], ["normalization=none"]]


def test_command_line_replaces_the_params_entry() -> None:
    space = parse({"optimizer.lr": "interval(0.1, 1)", "model.width": "choice(8, 16)"},
                  ["optimizer.lr=tag(log, interval(1e-3, 1e-1))", "model.width=32"])
    assert space.keys == ["optimizer.lr"]
    assert space.dim("optimizer.lr").scale == "log" and space.dim("optimizer.lr").low == 1e-3
    assert space.fixed == ("model.width=32",)


def test_nested_params_from_plus_overrides_are_flattened() -> None:
    space = parse({"model": {"width": "int(interval(8, 64))"}, "optimizer.lr": "interval(0.01, 0.1)"})
    assert space.keys == ["model.width", "optimizer.lr"]


def test_expressions_round_trip_through_the_parser() -> None:
    text = {"a": "tag(log1m, interval(0.5, 0.999))", "b": "tag(log, int(interval(16, 512)))",
            "c": "choice(x, y)", "d": "range(0, 10, step=2)", "e": "interval(0.0001, 1.0)"}
    space = parse(text)
    assert parse(space.as_params()) == parse(space.as_params())
    assert parse(space.as_params()).dims == space.dims
    params = {"a": 0.9, "b": 64, "c": "y", "d": 4, "e": 0.25}
    assert space.overrides(params) == ["a=0.9", "b=64", "c=y", "d=4", "e=0.25"]


@pytest.mark.parametrize("entry, message", [
    ("interval(1, 0.1)", "reversed interval"),
    ("interval(0.5, 0.5)", "empty interval"),
    ("int(interval(10, 2))", "reversed interval"),
    ("int(interval(3, 3))", "single integer"),
    ("tag(log, interval(0, 1))", "log scale needs bounds > 0"),
    ("tag(log, interval(-1, 1))", "log scale needs bounds > 0"),
    ("tag(log1m, interval(0.5, 1))", r"log1m scale needs bounds inside \(0, 1\)"),
    ("tag(log1m, interval(0, 0.9))", r"log1m scale needs bounds inside \(0, 1\)"),
    ("tag(log1m, int(interval(1, 5)))", "not integers"),
    ("choice()", "empty choice"),
    ("range(5, 1)", "empty range"),
    ("tag(lgo, interval(1, 2))", "unknown tag"),
    ("tag(log, linear, interval(1, 2))", "conflicting scale tags"),
    ("interval(0.1)", "cannot parse"),
])
def test_bad_dimensions_name_key_and_value(entry: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse({"optimizer.lr": entry})
    assert info.value.key == "optimizer.lr"
    assert str(info.value).startswith("optimizer.lr=")


def test_bad_dimension_on_the_command_line() -> None:
    with pytest.raises(ConfigError, match="log scale needs bounds > 0") as info:
        parse({}, ["optimizer.lr=tag(log, interval(0, 1))"])
    assert info.value.key == "optimizer.lr"


def test_scale_precedence_tag_then_sampler_default() -> None:
    space = parse({"a": "interval(1e-4, 1)", "b": "tag(linear, interval(1e-4, 1))",
                   "c": "tag(log, interval(1e-4, 1))", "d": "interval(-1, 1)"})
    a, b, c, d = space.dims
    log_random, random, grid = LogRandomSampler(), RandomSampler(), GridSampler()
    assert [log_random.scale_of(x) for x in (a, b, c, d)] == ["log", "linear", "log", "linear"]
    assert [random.scale_of(x) for x in (a, b, c, d)] == ["linear", "linear", "log", "linear"]
    assert [grid.scale_of(x) for x in (a, b, c, d)] == ["linear", "linear", "log", "linear"]


def test_endpoints_float_half_open_int_inclusive_range_excludes_stop() -> None:
    space = parse({"f": "interval(2, 3)", "i": "int(interval(1, 4))", "li": "tag(log, int(interval(1, 8)))",
                   "r": "range(0, 3)", "lf": "tag(log, interval(0.01, 0.02))"})
    trials = RandomSampler(seed=1).sample(space, 4000)
    f = np.array([t["f"] for t in trials])
    assert f.min() >= 2 and f.max() < 3
    assert sorted({t["i"] for t in trials}) == [1, 2, 3, 4]
    assert sorted({t["li"] for t in trials}) == list(range(1, 9))
    assert sorted({t["r"] for t in trials}) == [0, 1, 2]
    lf = np.array([t["lf"] for t in trials])
    assert lf.min() >= 0.01 and lf.max() < 0.02
    assert all(isinstance(t["i"], int) and isinstance(t["f"], float) for t in trials)


def test_seed_example_uniform_vs_log_uniform() -> None:
    """An untagged lr in [1e-4, 1]: random puts ~90% in [0.1, 1]; log_random ~25% per decade."""
    space = parse({"optimizer.lr": "interval(1e-4, 1)"})
    n = 20000
    uniform = np.array([t["optimizer.lr"] for t in RandomSampler(seed=0).sample(space, n)])
    assert np.mean(uniform >= 0.1) == pytest.approx(0.9, abs=0.01)
    logu = np.array([t["optimizer.lr"] for t in LogRandomSampler(seed=0).sample(space, n)])
    decades = np.histogram(np.log10(logu), bins=[-4, -3, -2, -1, 0])[0] / n
    assert decades == pytest.approx([0.25] * 4, abs=0.015)
    assert np.mean(logu >= 0.1) == pytest.approx(0.25, abs=0.015)


def test_log1m_spends_equal_effort_per_decade_of_one_minus_x() -> None:
    space = parse({"m": "tag(log1m, interval(0.9, 0.9999))"})
    m = np.array([t["m"] for t in RandomSampler(seed=2).sample(space, 20000)])
    decades = np.histogram(np.log10(1 - m), bins=[-4, -3, -2, -1])[0] / len(m)
    assert decades == pytest.approx([1 / 3] * 3, abs=0.015)
