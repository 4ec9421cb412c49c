"""The budget rule: n_trials -> rounds and their sizes (pipeline/schedule.py, README)."""

from __future__ import annotations

import pytest

from pipeline.search.schedule import Schedule


@pytest.mark.parametrize(("n", "sizes"), [
    (1, (1,)),
    (10, (5, 5)),
    (20, (6, 7, 7)),
    (48, (12, 12, 12, 12)),
    (50, (12, 12, 13, 13)),
    (100, (16, 16, 17, 17, 17, 17)),
    (200, (25,) * 8),
    (500, (62, 62, 62, 62, 63, 63, 63, 63)),
])
def test_the_rule(n: int, sizes: tuple[int, ...]) -> None:
    schedule = Schedule.plan(n)
    assert schedule.sizes == sizes and schedule.total == n


def test_explicit_settings_win_and_describe() -> None:
    assert Schedule.plan(None, 3, 16).sizes == (16, 16, 16)
    assert Schedule.plan(48, 3).sizes == (16, 16, 16)
    assert Schedule.plan(48, None, 12).sizes == (12, 12, 12, 12)
    assert Schedule.plan(48, 4, 12).describe() == "4 rounds x 12 trials = 48 trials"
    assert Schedule.plan(50).describe() == "4 rounds of 12, 12, 13, 13 trials = 50 trials"
    assert [Schedule.plan(50).start(r) for r in (1, 2, 3, 4)] == [0, 12, 24, 37]
