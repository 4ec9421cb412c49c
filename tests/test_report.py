"""Leaderboard, MLflow UI hint and the sweep figures."""

from __future__ import annotations

import csv
from pathlib import Path

from pipeline.search.space import parse
from pipeline.sweep.analysis.plots import best_trials_figure, sampler_figure, zoom_figure
from pipeline.sweep.report import leaderboard, mlflow_ui_hint, table, write_csv
from plugins.samplers.log_random import LogRandomSampler

TRIALS = [
    {"round": 1, "index": 0, "params": {"lr": 0.1, "act": "relu"}, "value": 0.5, "run_id": "a" * 32},
    {"round": 1, "index": 1, "params": {"lr": 0.01, "act": "tanh"}, "value": None, "error": "boom"},
    {"round": 2, "index": 0, "params": {"lr": 0.02, "act": "relu"}, "value": 0.25, "run_id": "b" * 32},
]
PNG = b"\x89PNG\r\n\x1a\n"


def test_leaderboard_orders_best_first_failures_last(tmp_path: Path) -> None:
    rows = leaderboard(TRIALS, "minimize")
    assert [r["trial"] for r in rows] == ["r2-t00", "r1-t00", "r1-t01"]
    assert [r["rank"] for r in rows] == [1, 2, ""] and rows[2]["error"] == "boom"
    assert [r["trial"] for r in leaderboard(TRIALS, "maximize")][:2] == ["r1-t00", "r2-t00"]
    text = table(rows, ["lr", "act"], metric="val_loss").splitlines()
    assert text[0].split() == ["#", "val_loss", "trial", "lr", "act", "mlflow", "run"]
    assert text[1].split() == ["1", "0.25", "r2-t00", "0.02", "relu", "b" * 12]
    assert len(text) == 3  # the failed trial is not in the top table
    write_csv(tmp_path / "leaderboard.csv", rows)
    with open(tmp_path / "leaderboard.csv") as f:
        read = list(csv.DictReader(f))
    assert [r["trial"] for r in read] == ["r2-t00", "r1-t00", "r1-t01"] and read[0]["mlflow_run_id"] == "b" * 32


def test_mlflow_ui_hint_points_at_the_runs_table() -> None:
    local = mlflow_ui_hint("sqlite:////tmp/x/mlflow.db", "3")
    assert "mlflow ui --backend-store-uri sqlite:////tmp/x/mlflow.db" in local
    assert "http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning" in local
    assert (mlflow_ui_hint("http://srv:5000", "3")
            == "MLflow UI: http://srv:5000/#/experiments/3/runs?workflowType=machine_learning")


def test_the_table_of_top_trials_keeps_within_a_terminal() -> None:
    from pipeline.sweep.report import table

    rows = [{"rank": 1, "objective": 0.1234567, "trial": "r1-t00", "optimizer.lr": 0.001234, "model.width": 128,
             "mlflow_run_id": "a" * 32}]
    wide = table(rows, ["optimizer.lr", "model.width"], metric="val_loss")
    assert wide.splitlines()[0] == "#  val_loss  trial   optimizer.lr  model.width  mlflow run"
    narrow = table(rows, ["optimizer.lr", "model.width"], metric="val_loss", width=45)
    assert narrow.splitlines() == ["#  val_loss  trial   optimizer.lr",
                                   "1  0.1235    r1-t00  0.001234",
                                   "(2 more columns: model.width, mlflow run)"]


def test_figures_are_pngs(tmp_path: Path) -> None:
    space = parse({"lr": "interval(1e-4, 1)", "m": "tag(log1m, interval(0.5, 0.999))", "act": "choice(a, b)"})
    narrow = parse({"lr": "interval(1e-3, 1e-1)", "m": "tag(log1m, interval(0.9, 0.99))", "act": "choice(a)"})
    trials = [{"params": p, "value": v} for p, v in
              zip(LogRandomSampler().sample(space, 6), [0.5, 0.2, None, 0.9, 0.1, 0.3], strict=True)]
    rounds = [{"round": 1, "space": space, "next_space": narrow, "trials": trials},
              {"round": 2, "space": narrow, "next_space": narrow, "trials": trials[:3]}]
    zoom_figure(rounds, LogRandomSampler().scale_of, tmp_path / "zoom.png", "val_loss")
    sampler_figure(tmp_path / "samplers.png")
    best_trials_figure({"r1-t00": {"train_loss": [(1, 1.0), (2, 0.5)], "val_loss": [(1, 1.1), (2, 0.6)],
                                   "bn/layer0/running_mean_avg": [(1, 0.0), (2, 0.1)]}}, tmp_path / "best.png")
    best_trials_figure({"r1-t00": {"distance": [(0, 0.3)]}}, tmp_path / "other_app.png")  # any metric names
    for name in ("zoom.png", "samplers.png", "best.png", "other_app.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG
