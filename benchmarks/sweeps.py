"""Costs around the trials: the sweeper's per-trial overhead against bare Hydra's, parallel
scaling with the joblib launcher, tracking's share of a trial, and memory over many trials."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.stats import spread

ROOT = Path(__file__).resolve().parents[1]
NOOP = Path(__file__).parent / "noop" / "app.py"


def _run(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, "HYDRA_FULL_ERROR": "1"})
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def _task_seconds(sweep_dir: Path) -> float:
    return sum(json.loads(p.read_text())["seconds"] for p in sweep_dir.glob("**/result.json"))


def _ours(tmp: Path, n: int, *extra: str) -> tuple[float, float]:
    sweep = tmp / f"ours-{n}-{time.monotonic_ns()}"
    wall = _run([sys.executable, "-m", "pipeline", "-m", f"hydra.sweep.dir={sweep}", f"hydra.sweeper.n_trials={n}",
                 "hydra.sweeper.rounds=1", "hydra.sweeper.fidelity.key=null",  # n equal trials, one round
                 "hydra.sweeper.importance=false", "hydra.sweeper.plots=false",
                 "hydra.sweeper.quiet=true", *extra], tmp)
    return wall, _task_seconds(sweep)


def sweep_overhead(quick: bool) -> dict[str, Any]:
    """Marginal cost per trial: slope of wall time over N minus the trials' own time, for the
    zoom sweeper (tracking off, one-epoch trials) and for Hydra's BasicSweeper on a no-op task."""
    n1, n2, repeats = (2, 4, 1) if quick else (4, 16, 3)
    ours_slopes, hydra_slopes, one_time = [], [], []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        common = ["tracking.enabled=false", "trainer.epochs=1", "model.width=8"]
        for _ in range(repeats):
            h1 = _run([sys.executable, str(NOOP), "-m", f"x=range(0,{n1})", f"hydra.sweep.dir={tmp / 'h1'}"], tmp)
            w1, t1 = _ours(tmp, n1, *common)
            h2 = _run([sys.executable, str(NOOP), "-m", f"x=range(0,{n2})", f"hydra.sweep.dir={tmp / 'h2'}"], tmp)
            w2, t2 = _ours(tmp, n2, *common)
            hydra_slopes.append((h2 - h1) / (n2 - n1))
            ours_slopes.append(((w2 - t2) - (w1 - t1)) / (n2 - n1))
            one_time.append((w1 - t1) - n1 * ours_slopes[-1])
    ours, hydra = statistics.median(ours_slopes), statistics.median(hydra_slopes)
    ratios = [o / h for o, h in zip(ours_slopes, hydra_slopes, strict=True)]
    return {"sweep_overhead_per_trial_s": ours, "hydra_overhead_per_job_s": hydra,
            "sweep_overhead_ratio": statistics.median(ratios), "sweep_overhead_ratio_spread": spread(ratios),
            "sweep_overhead_per_trial_s_spread": spread(ours_slopes),
            "hydra_overhead_per_job_s_spread": spread(hydra_slopes), "sweep_one_time_s": statistics.median(one_time)}


TRIAL_S, TRIAL_TOLERANCE = 5.0, 0.15  # the parallel part's trials: 5 s +- 15% as launched


def _launched_trial_s(tmp: Path, common: list[str], epochs: int, n: int = 2) -> float:
    """How long one trial of ``epochs`` lasts as the basic launcher runs it (the tasks' own time
    from their ``result.json``, mean over ``n`` trials)."""
    return _ours(tmp, n, *common, f"trainer.epochs={epochs}")[1] / n


def _epochs_for(seconds: float, tmp: Path, common: list[str]) -> tuple[int, list[float]]:
    """Epochs whose trials last ``seconds`` as launched: a line through launched trials of 8 and
    40 epochs, then checked with launched trials of the chosen epochs and corrected (at most
    twice) until they are within ``TRIAL_TOLERANCE``. Returns the epochs and each check's length."""
    low, high = _launched_trial_s(tmp, common, 8), _launched_trial_s(tmp, common, 40)
    per_epoch = max((high - low) / 32, 1e-3)
    epochs = max(10, round(8 + (seconds - low) / per_epoch))
    checks = []
    for _ in range(3):
        checks.append(_launched_trial_s(tmp, common, epochs))
        if abs(checks[-1] / seconds - 1) <= TRIAL_TOLERANCE:
            break
        epochs = max(10, round(epochs * seconds / checks[-1]))
    return epochs, checks


def parallel_speedup(quick: bool) -> dict[str, Any]:
    """16 trials of 5 s each as launched (quick: 4 short ones), MLflow on: joblib with 2 workers vs
    the basic launcher. The epochs are calibrated on launched trials (:func:`_epochs_for`), and
    the trials' own times in the measured sweeps are reported beside the target; the full mode
    runs two pairs in ABBA order (basic, joblib, joblib, basic) so a drift in the machine's speed
    hits both launchers alike, and reports the median pair ratio."""
    n = 4 if quick else 16
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        # equal-length trials: every setting fixed but a learning rate that neither diverges nor
        # stops early, so the comparison measures the launchers, not an unlucky split of work
        common = ["model.width=128", "trainer.batch_size=64", "optimizer.momentum=0.9",
                  f"tracking.uri=sqlite:///{tmp / 'mlflow.db'}", "optimizer.lr=interval(0.01, 0.05)"]
        epochs, checks = (10, []) if quick else _epochs_for(TRIAL_S, tmp, common)
        common.append(f"trainer.epochs={epochs}")
        joblib = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
        order = ["basic", "joblib"] if quick else ["basic", "joblib", "joblib", "basic"]
        walls: dict[str, list[float]] = {"basic": [], "joblib": []}
        trial_s: dict[str, list[float]] = {"basic": [], "joblib": []}
        for launcher in order:
            wall, task = _ours(tmp, n, *common, *(joblib if launcher == "joblib" else []))
            walls[launcher].append(wall)
            trial_s[launcher].append(task / n)
    ratios = [b / j for b, j in zip(walls["basic"], walls["joblib"], strict=True)]
    return {"parallel_speedup": statistics.median(ratios), "parallel_speedup_spread": spread(ratios),
            "parallel_speedups": ratios, "parallel_trials": n, "parallel_epochs": epochs,
            "parallel_trial_target_s": TRIAL_S, "parallel_calibration_checks_s": checks,
            "parallel_trial_s": statistics.median(trial_s["basic"]),
            "parallel_trial_s_spread": spread(trial_s["basic"]),
            "parallel_trial_s_joblib": statistics.median(trial_s["joblib"]),
            "basic_wall_s": statistics.median(walls["basic"]), "joblib_wall_s": statistics.median(walls["joblib"])}


def tracking_share(quick: bool) -> dict[str, Any]:
    """A default digits trial in-process with MLflow on vs off (the one-time import apart). The
    trial is what a sweep's job runs: compose its config, train, track, nested under a sweep's run
    with the tags a fidelity sweep gives it (job, round, sampler, sweep, rung, trial), batch norm's
    per-epoch ``batch_drift`` and its data set as a dataset input; the rest of a job's ~0.1 s of
    launcher work (directory, config files, logging set-up) is left out, which makes the share
    larger, not smaller.

    What each of the last additions costs is measured by leaving it out (measurement only: the
    product has no switch for them), each variant interleaved with the others so that drift of
    the machine spreads evenly: ``tracking_additions`` gives the median trial time of each."""
    from hydra import compose, initialize_config_dir

    from pipeline.tracking import tracker as tracking
    from pipeline.train.stage import run
    from plugins.normalization import batch_norm

    repeats = 2 if quick else 15
    log_dataset, metrics = tracking.MlflowTracker.log_dataset, batch_norm.BatchNorm.metrics

    def without_drift(self: Any) -> dict[str, float]:
        return {k: v for k, v in metrics(self).items() if k != "batch_drift"}

    with tempfile.TemporaryDirectory() as tmp, initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        start = time.perf_counter()
        import mlflow  # noqa: F401 - the one-time import, reported apart

        import_s = time.perf_counter() - start
        uri = f"sqlite:///{tmp}/mlflow.db"
        parent = run(compose("config", [f"tracking.uri={uri}", "trainer.epochs=1"]), verbose=False)  # store creation
        nested = [f"tracking.uri={uri}", "quiet=true", f"tracking.parent_run_id={parent.run_id}",
                  "tracking.run_name=r1-t03", "++tracking.tags.job=3", "++tracking.tags.round=1",
                  "++tracking.tags.sampler=gp", "++tracking.tags.rung=1", "++tracking.tags.trial=r1-t03"]
        tagged = [*nested, "++tracking.tags.sweep='2026-12-01/10-00-00'"]
        # name: (overrides, batch_drift logged, dataset input logged)
        variants = {"off": (["tracking.enabled=false"], True, True), "nested, rung tags": (nested, False, False),
                    "+ sweep tag": (tagged, False, False), "+ batch_drift": (tagged, True, False),
                    "on": (tagged, True, True)}
        times: dict[str, list[float]] = {k: [] for k in variants}
        calls: list[float] = []
        try:
            for _ in range(repeats):
                for name, (overrides, drift, dataset) in variants.items():
                    batch_norm.BatchNorm.metrics = metrics if drift else without_drift
                    tracking.MlflowTracker.log_dataset = log_dataset if dataset else (lambda *a: None)
                    t = time.perf_counter()
                    result = run(compose("config", overrides), verbose=False)
                    times[name].append(time.perf_counter() - t)
                    if name == "on":
                        calls.append(result.tracking_seconds)
        finally:
            batch_norm.BatchNorm.metrics, tracking.MlflowTracker.log_dataset = metrics, log_dataset
    median = {k: statistics.median(v) for k, v in times.items()}
    t_on, t_off = median["on"], median["off"]
    shares = [(on - off) / on for on, off in zip(times["on"], times["off"], strict=True)]  # per repeat
    # judged by the median of the repeats' shares, the figure the table shows beside its spread
    return {"tracking_share": statistics.median(shares),
            "tracking_share_spread": spread(shares), "trial_s_tracking_on": t_on, "trial_s_tracking_off": t_off,
            "tracking_calls_s": statistics.median(calls), "mlflow_import_s": import_s,
            "tracking_additions": {k: v for k, v in median.items() if k not in ("off", "on")}}


def _rss_mb(field: str = "VmRSS") -> float:
    """Resident memory now (``VmRSS``) or its peak (``VmHWM``) in MB. Not ``getrusage``: Linux
    keeps ``ru_maxrss`` across ``exec``, so a subprocess would report its parent's peak at fork."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory(quick: bool) -> dict[str, Any]:
    """:func:`memory_in_process` in a fresh interpreter each repeat (2; quick: 1), so what the
    other parts loaded (PyTorch, Optuna, thousands of search trials) is not counted."""
    code = ("import json, sys, pipeline\nfrom benchmarks.sweeps import memory_in_process\n"
            f"print('RESULT ' + json.dumps(memory_in_process({quick!r})))")
    runs = []
    for _ in range(1 if quick else 2):
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"memory benchmark failed:\n{proc.stderr[-3000:]}")
        line = next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))
        runs.append(json.loads(line[len("RESULT "):]))
    out = dict(runs[0])
    for key in ("peak_rss_mb", "rss_growth_kb_per_trial"):
        values = [r[key] for r in runs]
        out[key], out[f"{key}_spread"] = statistics.median(values), spread(values)
    return out


def memory_in_process(quick: bool) -> dict[str, Any]:
    """Resident memory over a search in one process (MLflow on). The first ~50 trials fill
    bounded caches (SQLite's page cache, SQLAlchemy's statement cache grow with the store, then
    stop), so the leak check is the growth per trial *after* a 50-trial sweep: the slope of a
    least-squares line through the resident size after each of trials 50-300."""
    from hydra import compose, initialize_config_dir

    from pipeline.train.stage import run

    n, total = (8, 12) if quick else (50, 300)
    rss = []
    with tempfile.TemporaryDirectory() as tmp, initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        uri = f"sqlite:///{tmp}/mlflow.db"
        for i in range(total):
            run(compose("config", [f"tracking.uri={uri}", "trainer.epochs=3", f"seed={i}"]), verbose=False)
            rss.append(_rss_mb())
            if i == n - 1:
                peak = _rss_mb("VmHWM")
    import numpy as np

    late = float(np.polyfit(np.arange(n, total), rss[n:], 1)[0]) * 1024  # MB per trial -> KB
    return {"peak_rss_mb": peak, "rss_first_mb": rss[0], "rss_after_sweep_mb": rss[n - 1], "rss_last_mb": rss[-1],
            "rss_growth_kb_per_trial": late, "memory_trials": n, "memory_trials_total": total}
