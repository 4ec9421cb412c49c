"""The sampler plugin contract as a pytest suite, run against every YAML the environment names
(``python -m pipeline.testing sampler my_sampler.yaml`` sets it), else against this project's own
``conf/sampler/``: how many proposals, their keys, types and bounds, seeded determinism and
independent streams, sampling in each dimension's scale, a refused bad seed, and the same
proposals from the same seed, stream and history (what resume relies on)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from pipeline.errors import ConfigError
from pipeline.registry import build
from pipeline.search.sampler import Sampler, propose
from pipeline.search.space import Choice, Interval, Range, parse
from pipeline.search.trial import Trial
from pipeline.testing import configs, shipped

YAMLS = configs("sampler")
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


def test_the_samplers_are_found() -> None:
    assert YAMLS, "no YAML to check"
    assert not shipped("sampler") or {"grid", "random", "log_random"} <= {p.stem for p in YAMLS}


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
