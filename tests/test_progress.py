"""Progress: trials counted from their result files; plain lines when not on a terminal."""

from __future__ import annotations

import json
import time
from pathlib import Path

from pipeline.sweep.progress import SweepProgress
from pipeline.train.progress import EpochProgress


def _result(job: Path, value: float | None) -> None:
    job.mkdir(parents=True, exist_ok=True)
    record = {"status": "completed", "value": value} if value is not None else {"status": "failed", "error": "x"}
    (job / "result.json").write_text(json.dumps(record))


def test_sweep_progress_counts_result_files_as_they_appear(tmp_path: Path, caplog) -> None:
    caplog.set_level("INFO", logger="pipeline.progress")
    jobs = [tmp_path / str(i) for i in range(4)]
    params = [{"lr": 0.1 * (i + 1)} for i in range(4)]
    with SweepProgress(8, 2, "minimize", live=False, metric="val_loss", poll_s=0.02) as progress:
        _result(jobs[0], 0.5)
        progress.watch("all", 1, jobs, params)
        assert progress.done == 1
        _result(jobs[1], 0.2)
        _result(jobs[2], None)
        deadline = time.monotonic() + 5
        while progress.done < 3 and time.monotonic() < deadline:  # the poller sees them mid-round
            time.sleep(0.02)
        assert progress.done == 3 and progress.failed == 1
        _result(jobs[3], float("nan"))
        progress.finish_round()
    assert (progress.done, progress.failed) == (4, 2)
    assert progress.best == (0.2, {"lr": 0.2})
    assert progress.status() == "round 1/2 · trials 4/8 · failed 2 · best val_loss=0.2 (lr=0.2)"
    lines = [r.getMessage() for r in caplog.records if r.name == "pipeline.progress"]
    assert len(lines) == 4 and lines[-1].startswith("progress: round 1/2 · trials 4/8")


def test_quiet_sweep_progress_logs_nothing(tmp_path: Path, caplog) -> None:
    caplog.set_level("INFO", logger="pipeline.progress")
    _result(tmp_path / "0", 1.0)
    with SweepProgress(1, 1, "maximize", quiet=True, live=False) as progress:
        progress.watch("all", 1, [tmp_path / "0"], [{}])
        progress.finish_round()
    assert progress.done == 1 and not caplog.records


def test_epoch_progress_lines_off_a_terminal(capsys) -> None:
    with EpochProgress(2, live=False) as shown:
        shown.update(1, {"train_loss": 1.0, "val_loss": 0.5, "val_acc": 0.9})
    assert capsys.readouterr().out == "epoch 1/2 train_loss=1.0000 val_loss=0.5000 val_acc=0.9000\n"
    with EpochProgress(2, enabled=False, live=False) as shown:
        shown.update(1, {"train_loss": 1.0})
    assert capsys.readouterr().out == ""


def test_fidelity_progress_shows_the_rung_the_budget_spent_and_the_best_at_the_highest_fidelity(
        tmp_path: Path) -> None:
    from pipeline.search.fidelity import Fidelity, plan

    rungs = plan(Fidelity("trainer.epochs", 1, 9, 3, "trainer.resume_from"), 14, None)  # 9, 3+3, 2+2
    progress = SweepProgress(19, 3, "minimize", quiet=True, metric="val_loss", rungs=rungs)
    low, high = tmp_path / "0", tmp_path / "9"
    for job_dir, value in ((low, 0.1), (high, 0.5)):
        job_dir.mkdir()
        (job_dir / "result.json").write_text(json.dumps({"status": "completed", "value": value}))
    progress.watch("all", 1, [low], [{"x": 1}], [1.0])
    progress.finish_round()
    progress.watch("all", 2, [high], [{"x": 2}], [2.0])  # promoted: 3 - 1 epochs
    progress.finish_round()
    # 0.5 at 3 epochs is the best so far although 0.1 at 1 epoch is lower: fidelities differ
    assert progress.status() == ("rung 2/3 (3 epochs) · trials 2/19 · epochs 3/" f"{rungs.spent:g}"
                                 " · failed 0 · best val_loss=0.5 (x=2)")
