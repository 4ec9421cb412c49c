"""The Hydra-free round loop on known functions."""

from __future__ import annotations

import math

import pytest

from pipeline.search.objective import Direction, Objective
from pipeline.search.rounds import Batch, Outcome, TooManyFailures, search
from pipeline.search.space import parse
from pipeline.search.zoom import ZoomMode, ZoomPolicy
from plugins.samplers.log_random import LogRandomSampler
from plugins.samplers.random import RandomSampler

SPACE = parse({"lr": "interval(1e-5, 1)", "width": "tag(log, int(interval(8, 1024)))", "act": "choice(a, b, c)"})


def bowl(p: dict) -> float:
    """Minimum 0 at lr = 1e-3 (in log10), width = 128 (in log2), act = b."""
    return (math.log10(p["lr"]) + 3) ** 2 + (math.log2(p["width"]) - 7) ** 2 / 4 + (p["act"] != "b")


def evaluator(f, calls: list | None = None):
    def evaluate(batch: Batch) -> list[Outcome]:
        if calls is not None:
            calls.append((batch.round, len(batch.proposals), batch.space))
        return [Outcome(f(p)) for p in batch.proposals]
    return evaluate


def test_zoom_approaches_the_optimum_and_narrows() -> None:
    calls: list = []
    result = search(SPACE, LogRandomSampler(seed=0), evaluator(bowl, calls), rounds=4, trials_per_round=24,
                    policy=ZoomPolicy(top_k=4, margin=0.1))
    assert [c[:2] for c in calls] == [(r, 24) for r in range(1, 5)]
    bests = [r.best.value for r in result.rounds]
    assert bests == sorted(bests, reverse=True)  # best-so-far never gets worse
    assert result.best.value < 0.1 and result.best.params["act"] == "b"
    assert abs(math.log10(result.best.params["lr"]) + 3) < 0.3
    widths = [math.log(r.space.dim("lr").high / r.space.dim("lr").low) for r in result.rounds]
    assert widths[-1] < widths[0] / 3
    final = result.rounds[-1].next_space.dim("lr")
    assert final.low < 1e-3 < final.high


@pytest.mark.parametrize("mode", ["span", "trust"])
def test_zoom_beats_one_round_of_the_same_budget(mode: str) -> None:
    """Median over seeds: 4 zoomed rounds of 24 beat a single round of 96 samples."""
    zoomed, flat = [], []
    for seed in range(7):
        zoomed.append(search(SPACE, LogRandomSampler(seed=seed), evaluator(bowl), rounds=4,
                             trials_per_round=24,
                             policy=ZoomPolicy(ZoomMode(mode), top_k=4, margin=0.1, shrink=0.5)).best.value)
        flat.append(search(SPACE, LogRandomSampler(seed=seed), evaluator(bowl), rounds=1,
                           trials_per_round=96).best.value)
    assert sorted(zoomed)[3] < sorted(flat)[3]


def test_trust_mode_halves_the_width_around_the_incumbent_each_round() -> None:
    result = search(SPACE, LogRandomSampler(seed=0), evaluator(bowl), rounds=4, trials_per_round=16,
                    policy=ZoomPolicy(ZoomMode.TRUST, top_k=3, shrink=0.5))
    widths = [math.log(r.space.dim("lr").high / r.space.dim("lr").low) for r in result.rounds]
    for before, after in zip(widths, widths[1:], strict=False):
        assert after == pytest.approx(before / 2, rel=0.01)
    for r in result.rounds:  # each next space is centred on the best so far (inside the bounds)
        lr, best = r.next_space.dim("lr"), r.best.params["lr"]
        assert lr.low <= best <= lr.high


def test_maximize() -> None:
    result = search(SPACE, RandomSampler(seed=1), evaluator(lambda p: -bowl(p)), rounds=3, trials_per_round=16,
                    objective=Objective(Direction.MAXIMIZE))
    assert result.best.value == max(t.value for t in result.trials)


def test_deterministic_for_a_seed_and_stream() -> None:
    def params(seed: int, stream: tuple):
        res = search(SPACE, LogRandomSampler(seed=seed), evaluator(bowl), rounds=2, trials_per_round=5, stream=stream)
        return [t.params for t in res.trials]

    assert params(0, (0,)) == params(0, (0,))
    assert params(0, (0,)) != params(0, (1,))
    assert params(0, (0,)) != params(1, (0,))


def test_failures_are_recorded_and_only_a_high_rate_stops_the_search() -> None:
    def flaky(batch: Batch) -> list[Outcome]:
        return [Outcome(None, "boom") if i % 4 == 0 else Outcome(float("nan")) if i % 4 == 1 else Outcome(bowl(p))
                for i, p in enumerate(batch.proposals)]

    result = search(SPACE, RandomSampler(), flaky, rounds=3, trials_per_round=8, max_failure_rate=0.5)
    assert result.failed == 12 and len(result.trials) == 24
    nan_trial = result.rounds[0].trials[1]
    assert nan_trial.value is None and "non-finite" in nan_trial.error
    assert result.best is not None and result.best.ok
    seen = []
    with pytest.raises(TooManyFailures, match="4 of 8 trials failed") as info:
        search(SPACE, RandomSampler(), flaky, rounds=3, trials_per_round=8, max_failure_rate=0.4,
               on_round=seen.append)
    assert len(seen) == 1 and len(info.value.result.trials) == 8  # stopped after the first round


def test_all_failed_round_keeps_the_space() -> None:
    result = search(SPACE, RandomSampler(), lambda batch: [Outcome(None, "x") for _ in batch.proposals], rounds=2,
                    trials_per_round=3, max_failure_rate=1.0)
    assert result.best is None and result.rounds[-1].next_space == SPACE


def test_an_adaptive_sampler_proposes_in_batches_that_see_the_trials_before_them() -> None:
    """batch=2: the GP sampler is asked 2 trials at a time and ``evaluate`` gets each batch with
    the index of its first trial; the last batch of a later round holds the explore draw. A
    sampler that does not model the history gets whole rounds whatever ``batch`` says."""
    from plugins.samplers.gp import GPSampler

    class Watching(GPSampler):
        def sample(self, space, n, *, stream=(), history=()):
            seen.append((stream, len(history), n))
            return super().sample(space, n, stream=stream, history=history)

    calls: list[tuple[int, int, int]] = []
    seen: list[tuple[tuple[int, ...], int, int]] = []

    def evaluate(batch: Batch) -> list[Outcome]:
        calls.append((batch.round, batch.first, len(batch.proposals)))
        return [Outcome(bowl(p)) for p in batch.proposals]

    result = search(SPACE, Watching(seed=0, startup=2), evaluate, rounds=2, trials_per_round=5, batch=2)
    assert calls == [(1, 0, 2), (1, 2, 2), (1, 4, 1), (2, 0, 2), (2, 2, 2), (2, 4, 1)]
    # round 2: 4 proposed by the sampler, the fifth drawn from the whole space (explore share)
    assert seen == [((1,), 0, 2), ((1, 1), 2, 2), ((1, 2), 4, 1), ((2,), 5, 2), ((2, 1), 7, 2)]
    assert [(t.round, t.index) for t in result.trials] == [(r, i) for r in (1, 2) for i in range(5)]

    whole: list[tuple[int, int, int]] = []

    def whole_rounds(batch: Batch) -> list[Outcome]:
        whole.append((batch.round, batch.first, len(batch.proposals)))
        return [Outcome(bowl(p)) for p in batch.proposals]

    search(SPACE, RandomSampler(seed=0), whole_rounds, rounds=2, trials_per_round=5, batch=2)
    assert whole == [(1, 0, 5), (2, 0, 5)]


def test_rungs_promote_the_best_and_add_new_proposals() -> None:
    """A fidelity schedule: each round after the first starts with the best of the round before
    (best first, continuing it at the higher fidelity), then new proposals; values of different
    fidelities are never ranked together."""
    from pipeline.search.fidelity import Fidelity, plan
    from pipeline.search.objective import one_fidelity

    space = parse({"x": "interval(0, 1)"})
    rungs = plan(Fidelity("epochs", 1, 9, 3, "resume"), 14, None)  # 9 // 3 promoted, then 6 // 3
    assert rungs.levels == (1, 3, 9) and rungs.promoted == (0, 3, 2) and rungs.new == (9, 3, 2)
    calls: list[tuple] = []

    def evaluate(batch: Batch) -> list[Outcome]:
        calls.append((batch.round, batch.fidelity, [c.name if c else None for c in batch.continues]))
        # a lower fidelity is worse (higher) by a margin: mixing fidelities would rank wrongly
        return [Outcome(p["x"] + 10.0 / batch.fidelity) for p in batch.proposals]

    result = search(space, RandomSampler(seed=0), evaluate, schedule=rungs.schedule(), batch=None)
    r1, r2, r3 = result.rounds
    assert [len(r.trials) for r in result.rounds] == [9, 6, 4]
    best3 = sorted(r1.trials, key=lambda t: t.value)[:3]
    assert [t.params for t in r2.trials[:3]] == [t.params for t in best3]
    assert [t.origin for t in r2.trials[:3]] == [(1, t.index) for t in best3]
    assert all(t.origin is None and t.fidelity == 3 for t in r2.trials[3:])
    best2 = sorted(r2.trials, key=lambda t: t.value)[:2]
    # a trial promoted twice keeps its first trial as origin (its checkpoint and MLflow run)
    assert [t.origin for t in r3.trials[:2]] == [t.origin or (2, t.index) for t in best2]
    assert calls[1] == (2, 3, [t.name for t in best3] + [None] * 3)
    assert result.best in r3.trials and result.best.fidelity == 9
    assert one_fidelity(result.trials, enough=4) == r3.trials and one_fidelity(result.trials, enough=5) == r2.trials
