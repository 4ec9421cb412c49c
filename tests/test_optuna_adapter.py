"""``sampler=optuna`` (plugins/samplers/optuna_adapter.py) with the installed Optuna (2.10 with the
`optuna` extra): fed the history it guides the search, it ignores trials outside the round's
region, and it runs CMA-ES too. Skipped cleanly without Optuna."""

from __future__ import annotations

import statistics

import pytest

pytest.importorskip("optuna", reason="install the `optuna` extra: pip install -e .[optuna]")

from pipeline.search.objective import History, Objective  # noqa: E402
from pipeline.search.space import parse  # noqa: E402
from pipeline.search.trial import Trial  # noqa: E402
from plugins.samplers.optuna_adapter import OptunaSampler  # noqa: E402
from plugins.samplers.random import RandomSampler  # noqa: E402
from tests.test_parzen import BRANIN, branin  # noqa: E402


def sequential(sampler: OptunaSampler, n: int) -> list[Trial]:
    trials: list[Trial] = []
    for r in range(n):
        (params,) = sampler.sample(BRANIN, 1, stream=(0, r), history=History(trials, Objective()))
        trials.append(Trial(r + 1, 0, params, branin(params)))
    return trials


def test_tpe_fed_its_history_beats_random_search() -> None:
    tpe = [min(t.value for t in sequential(OptunaSampler(seed=s), 40)) for s in range(6)]
    random = [min(branin(p) for p in RandomSampler(seed=s).sample(BRANIN, 40)) for s in range(6)]
    assert statistics.median(tpe) < 0.5 * statistics.median(random)  # measured: 0.31 vs 0.95


def test_trials_outside_the_region_are_left_out_and_proposals_stay_inside() -> None:
    region = parse({"x1": "tag(linear, interval(0, 5))", "x2": "tag(linear, interval(0, 5))"})
    history = History([Trial(1, i, {"x1": 8.0 + i * 0.1, "x2": 1.0}, 1.0) for i in range(5)]
                      + [Trial(1, 5, {"x1": 1.0, "x2": 1.0}, None, "boom")], Objective())
    sampler = OptunaSampler(seed=1)
    assert sampler._inside(region, history[0]) is None and sampler._inside(region, history[5]) is not None
    for p in sampler.sample(region, 6, stream=(0, 2), history=history):
        assert 0 <= p["x1"] < 5 and 0 <= p["x2"] < 5


def test_cma_es_runs_and_an_unknown_sampler_is_refused() -> None:
    trials = sequential(OptunaSampler(seed=0, sampler="cmaes"), 12)
    assert len(trials) == 12 and all(BRANIN.dim("x1").contains(t.params["x1"]) for t in trials)
    with pytest.raises(ValueError, match="'bayes' is not one of this Optuna's"):
        OptunaSampler(sampler="bayes")
