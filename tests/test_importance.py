"""Importance on synthetic objectives whose truth is known."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from pipeline.search.space import parse
from pipeline.sweep.analysis.importance import bar_chart, encode, estimate
from plugins.samplers.log_random import LogRandomSampler

SPACE = parse({
    "lr": "interval(1e-4, 1)",                      # strong (in log scale)
    "width": "tag(log, int(interval(16, 512)))",    # weak
    "unused": "interval(0, 1)",                     # not used at all
    "act": "choice(relu, tanh, gelu)",              # not used at all
})
SCALE = LogRandomSampler().scale_of


def objective(p: dict) -> float:
    return (math.log10(p["lr"]) + 2) ** 2 + 0.3 * math.log2(p["width"])  # true shares ~0.88, ~0.12


def trials(n: int = 80, seed: int = 0, fail_every: int = 0) -> list[dict]:
    out = []
    for i, params in enumerate(LogRandomSampler(seed=seed).sample(SPACE, n)):
        value = None if fail_every and i % fail_every == 0 else objective(params)
        out.append({"params": params, "value": value})
    return out


def test_ranks_strong_weak_and_unused() -> None:
    result = estimate(SPACE, trials(), SCALE, fits=8)
    ranked = [p.key for p in result.params]
    assert ranked[:2] == ["lr", "width"]
    share = {p.key: p.share for p in result.params}
    assert share["lr"] > 0.7 and share["width"] > 0.05
    assert share["width"] > 3 * max(share["unused"], share["act"])
    assert share["unused"] < 0.03 and share["act"] < 0.03
    assert all(p.spread >= 0 for p in result.params)
    assert 0 <= result.interactions < 0.3


def test_deterministic_for_a_seed() -> None:
    a = estimate(SPACE, trials(), SCALE, fits=4, seed=3).as_dict()
    b = estimate(SPACE, trials(), SCALE, fits=4, seed=3).as_dict()
    assert a == b
    c = estimate(SPACE, trials(), SCALE, fits=4, seed=4).as_dict()
    assert c["importance"] != a["importance"]


def test_failed_trials_are_left_out_and_counted() -> None:
    result = estimate(SPACE, trials(fail_every=5), SCALE, fits=2)
    assert result.n_failed == 16 and result.n_trials == 64
    with pytest.raises(ValueError, match="at least 5 successful trials"):
        estimate(SPACE, trials(n=4), SCALE)


def test_encoding_uses_each_parameters_scale() -> None:
    X, groups = encode(SPACE, [{"lr": 0.01, "width": 64, "unused": 0.5, "act": "tanh"}], SCALE)
    assert X[0, groups["lr"][0]] == pytest.approx(math.log(0.01))
    assert X[0, groups["width"][0]] == pytest.approx(math.log(64))
    assert X[0, groups["unused"][0]] == 0.5
    assert [X[0, c] for c in groups["act"]] == [0.0, 1.0, 0.0]
    momentum = parse({"m": "tag(log1m, interval(0.5, 0.999))"})
    X, _ = encode(momentum, [{"m": 0.99}], LogRandomSampler().scale_of)
    assert X[0, 0] == pytest.approx(math.log(0.01))


def test_seed_noise_flags_small_effects(tmp_path: Path) -> None:
    result = estimate(SPACE, trials(), SCALE, fits=2, noise_std=0.5)
    flagged = {p.key for p in result.params if result.within_noise(p)}
    assert "lr" not in flagged and {"unused", "act"} <= flagged
    assert "within seed noise" in result.table()
    bar_chart(result, tmp_path / "importance.png")
    assert (tmp_path / "importance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_allclose(sum(p["share"] for p in result.as_dict()["importance"])
                               + result.interactions, 1.0, atol=1e-9)


@pytest.mark.slow
def test_sweep_reports_importance_and_seed_noise(tmp_path: Path, mlflow_template: Path) -> None:
    import os
    import shutil
    import subprocess
    import sys

    import yaml
    from mlflow.tracking import MlflowClient

    db = tmp_path / "mlflow.db"
    shutil.copy(mlflow_template, db)
    uri = f"sqlite:///{db}"
    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "-m", f"hydra.sweep.dir={sweep}", f"tracking.uri={uri}",
         "trainer.epochs=2", "model.width=16", "normalization=batch_norm,none", "hydra.sweeper.n_trials=6",
         "hydra.sweeper.rounds=1", "hydra.sweeper.final_seeds=1", "hydra.sweeper.final_top=2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env={**os.environ, "HYDRA_FULL_ERROR": "0"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Importance for val_loss" in proc.stdout and "Seed noise (2 seeds of the top 2)" in proc.stdout
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("pipeline")
    runs = client.search_runs([exp.experiment_id], max_results=200)
    combos = [r for r in runs if "combination" in r.data.tags]
    for i, combo in enumerate(sorted(combos, key=lambda r: r.info.run_name)):
        folder = sweep / f"combo_{i}"
        imp = yaml.safe_load((folder / "importance.yaml").read_text())
        assert [p["key"] for p in imp["importance"]] and imp["trials"] == 6
        assert (folder / "importance.png").is_file()
        noise = yaml.safe_load((folder / "optimization_results.yaml").read_text())["noise_floor"]
        assert noise["seeds"] == 2 and len(noise["configs"]) == 2
        assert all(len(c["values"]) == 2 for c in noise["configs"])
        assert "importance/optimizer.lr" in combo.data.metrics and "seed_noise_std" in combo.data.metrics
        assert {a.path for a in client.list_artifacts(combo.info.run_id)} >= {"importance.yaml", "importance.png"}
        finals = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == combo.info.run_id
                  and r.data.tags.get("round") == "final"]
        assert len(finals) == 2
        seeds = {client.get_run(r.info.run_id).data.params["seed"] for r in finals}
        assert seeds == {"1"}
    # on demand, over a finished directory and over an MLflow run
    on_dir = subprocess.run([sys.executable, "-m", "pipeline.importance", str(sweep / "combo_0")],
                            capture_output=True, text=True, timeout=300)
    assert on_dir.returncode == 0 and "optimizer.lr" in on_dir.stdout, on_dir.stderr
    combo0 = [r for r in combos if r.info.run_name == "normalization=batch_norm"][0]
    on_run = subprocess.run([sys.executable, "-m", "pipeline.importance", "--run-id", combo0.info.run_id,
                             "--tracking-uri", uri, "--plot", str(tmp_path / "imp.png")],
                            capture_output=True, text=True, timeout=300)
    assert on_run.returncode == 0, on_run.stderr
    assert "optimizer.lr" in on_run.stdout and (tmp_path / "imp.png").is_file()
    # the same trials, the same numbers: the sweep's own analysis, the directory and the MLflow run
    def shares(text: str) -> list[str]:
        return [" ".join(line.split()[:4]) for line in text.splitlines()  # key, share, ±, spread
                if line.strip().startswith(("optimizer.", "model.", "trainer."))]

    assert shares(on_dir.stdout) == shares(on_run.stdout) and len(shares(on_dir.stdout)) >= 2
    saved = yaml.safe_load((sweep / "combo_0" / "importance.yaml").read_text())["importance"]
    assert [f"{p['key']} {p['share']:.2f}" for p in saved] == [" ".join(s.split()[:2]) for s in shares(on_dir.stdout)]


def test_optuna_cross_check_when_installed() -> None:
    pytest.importorskip("optuna")
    result = estimate(SPACE, trials(), SCALE, fits=2)
    assert result.optuna is not None and set(result.optuna) == {"lr", "width", "unused", "act"}
    assert max(result.optuna, key=result.optuna.get) == "lr"
    assert "Optuna MDI" in result.table()
