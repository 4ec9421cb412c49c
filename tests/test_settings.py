"""The sweeper's settings are checked once, each bad value named as hydra.sweeper.<key>."""

from __future__ import annotations

from pathlib import Path

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


ROOT = Path(__file__).resolve().parents[1]


def test_the_reference_page_is_generated_from_the_one_source() -> None:
    """docs/configuration.md is what pipeline.sweep.config says: its settings, types, defaults and help."""
    from pipeline.sweep import config

    page = (ROOT / "docs" / "configuration.md").read_text()
    assert page == config.reference(), "regenerate it: python -m pipeline.sweep.config > docs/configuration.md"
    for name, _ in config.fields():
        assert f"| `{name}` |" in page


def _composed(tmp: Path, *overrides: str) -> dict:
    """What Hydra composes for ``hydra.sweeper`` of an app that only says ``hydra/sweeper: zoom``."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    (tmp / "app.yaml").write_text("defaults:\n  - override hydra/sweeper: zoom\n  - _self_\nx: 1\n")
    with initialize_config_dir(config_dir=str(tmp), version_base="1.3"):
        cfg = compose("app", list(overrides), return_hydra_config=True)
    return OmegaConf.to_container(cfg.hydra.sweeper, resolve=True)


def test_every_default_is_the_same_in_hydra_the_settings_and_the_engine(tmp_path: Path) -> None:
    """One source: what Hydra composes is pipeline.sweep.config's defaults; the settings made of
    them hold the engine's own defaults (policy, fidelity, objective, schedule rule)."""
    from dataclasses import asdict

    from pipeline.search.fidelity import Fidelity
    from pipeline.search.objective import Objective
    from pipeline.search.schedule import DEFAULT_N_TRIALS, Schedule
    from pipeline.search.zoom import ZoomPolicy
    from pipeline.sweep import config

    composed = _composed(tmp_path)
    assert {k: v for k, v in composed.items() if not k.startswith("_")} == config.defaults()
    from_hydra, bare = SweepSettings.from_config(**composed), SweepSettings.from_config()
    assert from_hydra == bare
    assert bare.policy == ZoomPolicy() and bare.fidelity == Fidelity() and bare.objective == Objective()
    assert bare.schedule == Schedule.plan(DEFAULT_N_TRIALS)
    assert (bare.tracking.uri, bare.tracking.experiment, bare.tracking.trial_keys) == (None, "zoom", None)
    assert {k: composed["fidelity"][k] for k in asdict(Fidelity())} == asdict(Fidelity())
    # and what the sweep's MLflow run records as its settings reads back as the same policy
    assert ZoomPolicy.from_params(bare.policy.as_params()) == bare.policy


@pytest.mark.slow
def test_a_results_file_replays_the_policy_the_sweep_used(tmp_path: Path) -> None:
    """A sweep with the default policy writes settings that pipeline.zoom reads back as that policy
    (top_k resolved to the trials it zoomed onto), and pipeline.zoom's next space is the sweep's own."""
    import shutil
    import subprocess
    import sys
    from dataclasses import replace

    import yaml

    from pipeline.search.zoom import ZoomPolicy
    from pipeline.sweep.analysis.zoom_stage import zoom_directory

    app = tmp_path / "app"
    shutil.copytree(ROOT / "tests" / "apps" / "sphere", app)
    (app / "sphere.yaml").write_text((app / "sphere.yaml").read_text().replace("    top_k: 2\n", ""))
    proc = subprocess.run([sys.executable, "sphere.py", "-m", "hydra.sweep.dir=out", "hydra.sweeper.importance=false",
                           "hydra.sweeper.plots=false"], cwd=app, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = yaml.safe_load((app / "out" / "optimization_results.yaml").read_text())
    policy = ZoomPolicy.from_params(results["settings"])
    assert policy == replace(ZoomPolicy(), top_k=ZoomPolicy().top_count(8))  # 8 trials a round: the best 2
    space, _ = zoom_directory(app / "out")
    assert space.as_params() == results["next_space"]
