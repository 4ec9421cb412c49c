"""The sweeper's settings are checked once, each bad value named as hydra.sweeper.<key>."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError
from pipeline.search.objective import Direction
from pipeline.search.zoom import ZoomMode
from pipeline.sweep.settings import SweepSettings


def test_defaults_and_the_policy() -> None:
    s = SweepSettings.from_config(rounds=2, trials_per_round=16, zoom="trust", top_k=3, metric="loss",
                                  tracking={"uri": "sqlite:///x.db", "trial_keys": {"tags": "t.tags", "uri": None}})
    assert (s.schedule.sizes, s.max_failure_rate, s.timeout_s) == ((16, 16), 0.5, None)
    assert s.policy.mode is ZoomMode.TRUST and s.policy.top_k == 3
    assert s.objective.direction is Direction.MINIMIZE and s.objective.metric == "loss"
    assert s.tracking.on and s.tracking.trial_keys == {"tags": "t.tags"} and s.tracking.experiment == "zoom"
    assert not SweepSettings.from_config().tracking.on
    assert SweepSettings.from_config().schedule.sizes == (12, 12, 12, 12)  # 48 trials by the rule
    assert SweepSettings.from_config(n_trials=50).schedule.sizes == (12, 12, 13, 13)
    assert SweepSettings.from_config(n_trials=20, rounds=2).schedule.sizes == (10, 10)


@pytest.mark.parametrize(("raw", "line"), [
    ({"rounds": 0}, "hydra.sweeper.rounds=0: must be a positive integer (or null)"),
    ({"trials_per_round": 2.5}, "hydra.sweeper.trials_per_round=2.5: must be a positive integer (or null)"),
    ({"n_trials": 48, "rounds": 3, "trials_per_round": 8},
     "hydra.sweeper.n_trials=48: disagrees with rounds=3 x trials_per_round=8 = 24; set one or the other"),
    ({"n_trials": 50, "trials_per_round": 8},
     "hydra.sweeper.n_trials=50: is not a multiple of trials_per_round=8; leave trials_per_round null to split it"),
    ({"n_trials": 4, "rounds": 5}, "hydra.sweeper.rounds=5: more rounds than trials (n_trials=4)"),
    ({"rounds": 4}, "hydra.sweeper.n_trials=None: set the number of trials (or both rounds and trials_per_round)"),
    ({"timeout_s": 0}, "hydra.sweeper.timeout_s=0: must be a positive number of seconds (or null)"),
    ({"top_k": 20}, "hydra.sweeper.top_k=20: larger than a round (4 rounds x 12 trials = 48 trials)"),
    ({"top_fraction": 0}, "hydra.sweeper.top_fraction=0: must be in (0, 1]"),
    ({"zoom": "box"}, "hydra.sweeper.zoom='box': must be one of span, trust"),
    ({"margin": -0.1}, "hydra.sweeper.margin=-0.1: must be >= 0"),
    ({"shrink": 1.5}, "hydra.sweeper.shrink=1.5: must be in (0, 1]"),
    ({"max_failure_rate": 2}, "hydra.sweeper.max_failure_rate=2: must be in [0, 1]"),
    ({"final_seeds": True}, "hydra.sweeper.final_seeds=True: must be an integer >= 0"),
    ({"final_seeds": 2, "final_top": 0}, "hydra.sweeper.final_top=0: must be a positive integer"),
    ({"direction": "up"}, "hydra.sweeper.direction='up': must be minimize or maximize"),
    ({"rouds": 3}, "hydra.sweeper.rouds=3: not a setting of the zoom sweeper"),
    ({"tracking": {"uri": ""}}, "hydra.sweeper.tracking.uri='': must be a tracking URI or null (no MLflow)"),
    ({"tracking": {"uri": "x", "trial_keys": {"parent": "a.b"}}},
     "hydra.sweeper.tracking.trial_keys.parent='a.b': not a lineage key; the keys are parent_run_id, uri, "
     "run_name, tags"),
])
def test_bad_values_name_their_key(raw: dict, line: str) -> None:
    with pytest.raises(ConfigError) as err:
        SweepSettings.from_config(**raw)
    assert str(err.value) == line
