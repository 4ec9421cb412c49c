"""The sweep runner in-process, without Hydra: a composer that builds the task config from the
overrides, and a launcher that evaluates a plain function and writes what a real job writes
(``result.json``, ``metrics.json``). Crossed combinations, seed re-runs, failures and the failure
budget, the dry run, and resume after a crash injected after every write the runner makes (files
and MLflow calls), each compared with an uninterrupted run."""

from __future__ import annotations

import csv
import math
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from omegaconf import DictConfig, OmegaConf

from pipeline.atomic import write_json_atomic
from pipeline.errors import ConfigError
from pipeline.search.rounds import TooManyFailures
from pipeline.search.space import parse
from pipeline.search.trial import Outcome
from pipeline.sweep.files import METRICS_FILE, RESULT_FILE, SweepDir, job_outcome
from pipeline.sweep.jobs import Job
from pipeline.sweep.lineage import make_lineage
from pipeline.sweep.plan import describe, make_plan
from pipeline.sweep.runner import SweepRunner
from pipeline.sweep.settings import SweepSettings
from pipeline.sweep.state import SweepState
from tests.test_pinned_behaviour import snapshot

BASE = {"x": 0.0, "y": "a", "seed": 0}
OFFSET = {"a": 0.0, "b": 1.0, "c": 0.5}


def bowl(cfg: DictConfig) -> float:
    """Minimum 0 at x = 1, y = a; a seed adds a small, known offset; y = bad raises."""
    if cfg.y == "bad":
        raise ValueError("y=bad is not a shape")
    return (float(cfg.x) - 1) ** 2 + OFFSET[str(cfg.y)] + 0.01 * (cfg.seed % 3)


class DictComposer:
    """The task config: ``BASE`` with each ``key=value`` override applied."""

    def compose(self, overrides: Sequence[str]) -> tuple[DictConfig, dict[str, str]]:
        cfg = dict(BASE)
        for o in overrides:
            key, _, value = o.lstrip("+").partition("=")
            cfg[key] = yaml.safe_load(value)
        return OmegaConf.create(cfg), {}


class FunctionLauncher:
    """Evaluates ``f`` on each job's composed config and writes the job's files, as a job would."""

    parallelism = 1  # one job at a time, as Hydra's basic launcher

    def __init__(self, root: Path, f: Callable[[DictConfig], float]) -> None:
        self.root, self.f, self.launched = root, f, []

    def launch(self, jobs: Sequence[Job]) -> list[Outcome]:
        out = []
        for job in jobs:
            self.launched.append(job.number)
            cfg, _ = DictComposer().compose(job.overrides)
            job_dir = self.root / job.subdir
            try:
                value = self.f(cfg)
            except Exception as exc:
                write_json_atomic(job_dir / RESULT_FILE, {"status": "failed", "error": f"ValueError: {exc}"})
                out.append(Outcome(None, f"ValueError: {exc}", str(job_dir)))
                continue
            write_json_atomic(job_dir / METRICS_FILE, {"metrics": {"loss": value, "test_loss": value + 1}})
            write_json_atomic(job_dir / RESULT_FILE, {"status": "completed", "value": value})
            out.append(job_outcome(job_dir, value, None))
        return out


def runner(tmp: Path, arguments: Sequence[str], *, resume: bool = False, uri: str | None = None,
           **settings: Any) -> tuple[SweepRunner, Any]:
    raw = {"rounds": 2, "trials_per_round": 4, "top_k": 2, "importance": False, "plots": False, "resume": resume,
           "sampler": {"_target_": "plugins.samplers.random.RandomSampler", "seed": 5},
           "tracking": {"uri": uri, "experiment": "runner"}, **settings}
    s = SweepSettings.from_config(**raw)
    space = parse(s.params, arguments)
    sweep_dir = SweepDir(tmp / "sweep")
    searches = make_plan(space, s, DictComposer(), sweep_dir)
    state = SweepState.open(sweep_dir.state, resume=resume, arguments=arguments, params=s.params)
    launcher = FunctionLauncher(sweep_dir.root, bowl)
    return SweepRunner(s, searches, launcher, sweep_dir, state, lambda o: "task " + " ".join(o),
                       make_lineage(s.tracking, sweep_dir.root)), space


SPACE = ["x=interval(-4.0, 4.0)", "y=choice(a, b, c)"]


def board(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "leaderboard.csv") as f:
        return [{k: v for k, v in row.items() if k not in ("job_dir", "mlflow_run_id")} for row in csv.DictReader(f)]


def test_rounds_write_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r, space = runner(tmp_path, SPACE)
    summary = r.run(space)
    sweep = tmp_path / "sweep"
    rows = yaml.safe_load((sweep / "trials.yaml").read_text())
    assert [(t["round"], t["index"]) for t in rows] == [(1, 0), (1, 1), (1, 2), (1, 3), (2, 0), (2, 1), (2, 2), (2, 3)]
    values = [t["value"] for t in rows]
    assert summary["best_value"] == min(values) and summary["trials"] == 8
    assert summary["best_held_out"]["test_loss"] == pytest.approx(min(values) + 1)
    assert summary["reproduce"].startswith("task x=")
    assert sorted(p.name for p in (sweep / "zoom").iterdir()) == ["round_1.yaml", "round_2.yaml", "round_3.yaml"]
    assert sorted(int(p.parent.name) for p in sweep.glob("*/result.json")) == list(range(8))
    assert [float(b["objective"]) for b in board(sweep)] == sorted(values)
    assert yaml.safe_load((sweep / "sweep_state.json").read_text())["status"] == "finished"
    assert "Best objective=" in capsys.readouterr().out


def test_crossed_combinations_get_their_own_searches(tmp_path: Path) -> None:
    r, space = runner(tmp_path, ["x=interval(-4.0, 4.0)", "y=a,b"])
    summary = r.run(space)
    sweep = tmp_path / "sweep"
    assert [c["combination"] for c in summary["combinations"]] == [["y=a"], ["y=b"]]
    assert summary["best_combination"] == ["y=a"]  # b adds 1 everywhere
    for i, y in enumerate("ab"):
        rows = yaml.safe_load((sweep / f"combo_{i}" / "trials.yaml").read_text())
        assert len(rows) == 8 and {Path(t["job_dir"]).parent.name for t in rows} == {f"combo_{i}"}
        assert all(t["value"] >= OFFSET[y] for t in rows)
    assert sorted(int(p.parent.name) for p in sweep.glob("combo_1/*/result.json")) == list(range(8, 16))


def test_seed_reruns_measure_the_noise_floor(tmp_path: Path) -> None:
    r, space = runner(tmp_path, SPACE, final_seeds=2, final_top=2)
    summary = r.run(space)
    noise = summary["noise_floor"]
    assert noise["seeds"] == 3 and len(noise["configs"]) == 2
    best = noise["configs"][0]
    # the function adds 0.01 x (seed mod 3): seeds 0, 1, 2 -> +0, +0.01, +0.02
    assert best["values"] == pytest.approx([summary["best_value"], summary["best_value"] + 0.01,
                                            summary["best_value"] + 0.02])
    assert best["std"] == pytest.approx(0.01) and noise["std"] == pytest.approx(0.01)
    # seed re-runs take the job numbers after every round: 8, 9 (best), 10, 11 (second)
    assert sorted(int(p.parent.name) for p in (tmp_path / "sweep" / "final").glob("*/result.json")) == [8, 9, 10, 11]


def test_failures_are_recorded_and_the_budget_stops_the_sweep(tmp_path: Path) -> None:
    r, space = runner(tmp_path, ["x=interval(-4.0, 4.0)", "y=choice(a, bad)"], max_failure_rate=1.0)
    summary = r.run(space)
    rows = yaml.safe_load((tmp_path / "sweep" / "trials.yaml").read_text())
    failed = [t for t in rows if t["value"] is None]
    assert failed and all(t["error"] == "ValueError: y=bad is not a shape" for t in failed)
    assert summary["failed"] == len(failed) and all(t["params"]["y"] == "bad" for t in failed)
    shutil.rmtree(tmp_path / "sweep")
    r, space = runner(tmp_path, ["x=interval(-4.0, 4.0)", "y=choice(bad)"], max_failure_rate=0.5)
    with pytest.raises(TooManyFailures, match="4 of 4 trials failed"):
        r.run(space)
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert results["failed"] == 4 and len(results["rounds"]) == 1
    assert yaml.safe_load((tmp_path / "sweep" / "sweep_state.json").read_text())["status"] == "failed"


def test_dry_run_describes_the_plan(tmp_path: Path) -> None:
    r, _ = runner(tmp_path, ["x=tag(log, interval(0.1, 4.0))", "y=a,b"], zoom="trust", shrink=0.5)
    text = describe(r.searches, r.settings)
    assert text.splitlines()[0] == ("Dry run: 2 search(es) x 2 rounds x 4 trials = 8 trials (each search), 16 in "
                                    "all; zoom: trust region of 0.5 x the width around the best, choices kept; 1 "
                                    "of each later round drawn from the whole original space. Nothing launched.")
    assert "  x: tag(log, interval(0.1, 4.0))  [log scale]" in text and "  fixed: y=b" in text
    assert not (tmp_path / "sweep").exists()


class Crash(BaseException):
    """The process dies here."""


class Fault:
    """Crash after the ``n``-th counted call, while ``armed`` (the run before the resume)."""

    def __init__(self, n: int) -> None:
        self.n, self.calls, self.armed, self.fired = n, 0, True, False


def crash_after(fault: Fault, counted: Callable[..., bool], target: Any, name: str,
                monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the ``fault.n``-th counted call of the wrapped methods raise :class:`Crash` after it ran."""
    original = getattr(target, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if fault.armed and counted(*args, **kwargs):
            fault.calls += 1
            if fault.calls == fault.n:
                fault.armed, fault.fired = False, True
                raise Crash(f"{name} #{fault.n}")
        return result

    monkeypatch.setattr(target, name, wrapper)


RANDOM = {"_target_": "plugins.samplers.random.RandomSampler", "seed": 5}
# adaptive: with the function launcher's parallelism of 1 it proposes one trial at a time, each
# seeing the trials before it, so a resumed round must read back exactly what the first run saw
GP = {"_target_": "plugins.samplers.gp.GPSampler", "seed": 5, "startup": 2, "candidates": 64}


def uninterrupted(tmp: Path, uri: str | None = None, sampler: dict[str, Any] = RANDOM) -> dict[str, Any]:
    r, space = runner(tmp, SPACE, uri=uri, final_seeds=1, final_top=1, sampler=sampler)
    r.run(space)
    return {"files": snapshot(tmp / "sweep"), "board": board(tmp / "sweep")}


def resume_after_crash(tmp: Path, fault: Fault, uri: str | None = None,
                       sampler: dict[str, Any] = RANDOM) -> tuple[dict[str, Any], set[int], list[int]]:
    """Run until the crash, resume; the result files, the jobs finished before the resume and the
    jobs the resume launched."""
    r, space = runner(tmp, SPACE, uri=uri, final_seeds=1, final_top=1, sampler=sampler)
    try:
        r.run(space)
    except Crash:
        pass
    fault.armed = False
    before = {int(p.parent.name) for p in (tmp / "sweep").rglob(RESULT_FILE)}
    r, space = runner(tmp, SPACE, uri=uri, resume=True, final_seeds=1, final_top=1, sampler=sampler)
    r.run(space)
    return {"files": snapshot(tmp / "sweep"), "board": board(tmp / "sweep")}, before, r.launcher.launched


@pytest.mark.parametrize("sampler", [RANDOM, GP], ids=["random", "gp one trial at a time"])
def test_resume_after_a_crash_after_any_file_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   sampler: dict[str, Any]) -> None:
    expected = uninterrupted(tmp_path / "reference", sampler=sampler)
    n = 1
    while True:
        tmp = tmp_path / f"crash_{n}"
        fault = Fault(n)
        with monkeypatch.context() as m:
            crash_after(fault, lambda src, dst, tmp=tmp: str(tmp) in str(dst), os, "replace", m)
            got, before, relaunched = resume_after_crash(tmp, fault, sampler=sampler)
        assert got == expected, f"crash after write {n}"
        assert not before & set(relaunched), f"crash after write {n}: finished jobs ran again"
        assert {int(p.parent.name) for p in (tmp / "sweep").rglob(RESULT_FILE)} == set(range(9))
        if not fault.fired:  # the run made fewer writes than n: every point was tried
            break
        n += 1
    assert n > 30


@pytest.mark.slow  # every MLflow call of a sweep crashed after in turn: ~25 s
def test_resume_after_a_crash_after_any_mlflow_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     mlflow_template: Path) -> None:
    from mlflow.tracking import MlflowClient

    from pipeline.tracking.tracker import MlflowTracker

    def store(tmp: Path) -> str:
        tmp.mkdir(parents=True)
        shutil.copy(mlflow_template, tmp / "mlflow.db")
        return f"sqlite:///{tmp / 'mlflow.db'}"

    expected = uninterrupted(tmp_path / "reference", store(tmp_path / "reference"))
    n = 1
    while True:
        tmp = tmp_path / f"crash_{n}"
        uri = store(tmp)
        fault = Fault(n)
        with monkeypatch.context() as m:
            for name in ("start", "attach", "flush", "log_artifact", "end"):
                crash_after(fault, lambda *a, **k: True, MlflowTracker, name, m)
            got, before, relaunched = resume_after_crash(tmp, fault, uri)
        assert got == expected, f"crash after MLflow call {n}"
        assert not before & set(relaunched), f"crash after MLflow call {n}: finished jobs ran again"
        client = MlflowClient(tracking_uri=uri)
        runs = client.search_runs([client.get_experiment_by_name("runner").experiment_id], max_results=1000)
        done = [r for r in runs if r.info.status == "FINISHED" and "job" in r.data.tags]
        assert sorted(int(r.data.tags["job"]) for r in done) == list(range(9))  # one finished run per job
        for r in done:
            assert math.isclose(r.data.metrics["objective"], r.data.metrics["loss"])
        if not fault.fired:
            break
        n += 1
    assert n > 10


@pytest.mark.alone
def test_no_trial_starts_after_the_timeout_and_resume_completes_the_sweep(tmp_path: Path) -> None:
    import time

    reference = tmp_path / "reference"
    r, space = runner(reference, SPACE)
    r.run(space)

    def slow(cfg: DictConfig) -> float:
        time.sleep(0.05)
        return bowl(cfg)

    r, space = runner(tmp_path, SPACE, timeout_s=0.12)
    r.launcher.f = slow
    started = time.monotonic()
    summary = r.run(space)
    assert time.monotonic() - started < 0.12 + 0.2  # the trial running at the deadline finishes, no other
    ran = len(r.launcher.launched)
    assert 1 <= ran < 8 and summary["trials"] == ran
    assert yaml.safe_load((tmp_path / "sweep" / "sweep_state.json").read_text())["status"] == "stopped"
    assert len(yaml.safe_load((tmp_path / "sweep" / "trials.yaml").read_text())) == ran
    r, space = runner(tmp_path, SPACE, resume=True)
    r.run(space)
    assert sorted(r.launcher.launched) == list(range(ran, 8))  # the rest, nothing twice
    assert snapshot(tmp_path / "sweep") == snapshot(reference / "sweep")


def test_a_finished_sweep_extended_with_a_larger_n_trials_adds_rounds(tmp_path: Path) -> None:
    budget = {"n_trials": 8, "rounds": None, "trials_per_round": None}
    r, space = runner(tmp_path, ["x=interval(-4.0, 4.0)", "y=a,b"], **budget)
    r.run(space)
    first = {i: yaml.safe_load((tmp_path / "sweep" / f"combo_{i}" / "trials.yaml").read_text()) for i in (0, 1)}
    with pytest.raises(ConfigError, match="n_trials=6: the sweep already has 8 trials; resume it with n_trials >= 8"):
        runner(tmp_path, ["x=interval(-4.0, 4.0)", "y=a,b"], resume=True, **{**budget, "n_trials": 6})
    r, space = runner(tmp_path, ["x=interval(-4.0, 4.0)", "y=a,b"], resume=True, **{**budget, "n_trials": 14})
    assert [s.sizes for s in r.numbers.segments] == [(4, 4), (6,)]
    r.run(space)
    # the 6 new trials of each combination are numbered after all 16 of the first segment
    assert r.launcher.launched == list(range(16, 28))
    for i in (0, 1):
        rows = yaml.safe_load((tmp_path / "sweep" / f"combo_{i}" / "trials.yaml").read_text())
        assert rows[:8] == first[i] and [t["round"] for t in rows[8:]] == [3] * 6
        results = yaml.safe_load((tmp_path / "sweep" / f"combo_{i}" / "optimization_results.yaml").read_text())
        assert results["trials"] == 14 and len(results["rounds"]) == 3
    state = yaml.safe_load((tmp_path / "sweep" / "sweep_state.json").read_text())
    assert state["segments"] == [[4, 4], [6]] and state["status"] == "finished"


def test_a_lock_naming_no_owner_is_stale_only_after_a_grace(tmp_path: Path) -> None:
    """A ``.job.lock`` left empty (its writer died between creating and writing it, or the disk
    was full) is taken over once older than the grace period; a fresh one is respected."""
    import time

    from pipeline.errors import JobBusy
    from pipeline.sweep.files import JOB_LOCK, job_lock

    lock = tmp_path / JOB_LOCK
    lock.write_text("")
    with pytest.raises(JobBusy, match="in use by process \\? on \\?"):
        with job_lock(tmp_path):
            pass
    old = time.time() - 60
    os.utime(lock, (old, old))
    with job_lock(tmp_path):
        assert lock.read_text().split(" ")[1] == str(os.getpid())
    assert not lock.exists()
