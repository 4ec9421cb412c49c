"""What a user reads after a sweep: the leaderboard (terminal table and CSV) and how to open the
MLflow UI on the store. Hydra-free."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.atomic import write_text_atomic
from pipeline.search.trial import trial_name


def leaderboard(trials: Sequence[Mapping[str, Any]], direction: str) -> list[dict[str, Any]]:
    """Every trial as a row, best first; failed trials last. A trial mapping has ``value``,
    ``params``, ``round``, ``index`` and optionally ``fidelity``, ``combination``, ``run_id``,
    ``error``, ``job_dir``. With fidelities only the trials at the highest one are ranked."""
    ok = [t for t in trials if t.get("value") is not None and math.isfinite(t["value"])]
    failed = [t for t in trials if t not in ok]
    sign = -1 if direction == "maximize" else 1
    # a fidelity sweep ranks only the trials at the highest fidelity reached; lower ones follow
    top = max((t["fidelity"] for t in ok if t.get("fidelity") is not None), default=None)
    ranked = sorted((t for t in ok if t.get("fidelity") == top), key=lambda t: sign * t["value"])
    lower = sorted((t for t in ok if t.get("fidelity") != top), key=lambda t: (-t["fidelity"], sign * t["value"]))
    rows = []
    for rank, t in enumerate(ranked + lower + failed, start=1):
        rows.append({
            "rank": rank if rank <= len(ranked) else "",
            "objective": t.get("value"),
            "round": t.get("round"),
            **({"fidelity": t["fidelity"]} if t.get("fidelity") is not None else {}),
            "trial": trial_name(t.get("round"), t.get("index", 0)),
            **({"combination": t["combination"]} if t.get("combination") else {}),
            **{k: v for k, v in t.get("params", {}).items()},
            "mlflow_run_id": t.get("run_id") or "",
            "error": t.get("error") or "",
            "job_dir": t.get("job_dir") or "",
        })
    return rows


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def table(rows: Sequence[Mapping[str, Any]], keys: Sequence[str], *, top: int = 10, metric: str = "objective",
          width: int | None = None) -> str:
    """A fixed-width text table of the ``top`` rows: rank, objective, trial, the ``keys``, run id.
    Within ``width`` characters (a terminal's) if given: the last columns that do not fit are left
    out, and a last line says how many (the CSV has them all)."""
    shown = [r for r in rows if r["rank"] != ""][:top]
    combo = any("combination" in r for r in shown)
    header = ["#", metric, "trial", *(["combination"] if combo else []), *keys, "mlflow run"]
    body = [[str(r["rank"]), _cell(r["objective"]), r["trial"], *([r.get("combination", "")] if combo else []),
             *(_cell(r.get(k)) for k in keys), (r["mlflow_run_id"] or "")[:12]] for r in shown]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    kept = len(header)
    while width is not None and kept > 3 and sum(widths[:kept]) + 2 * (kept - 1) > width:
        kept -= 1
    lines = ["  ".join(h.ljust(w) for h, w in zip(header[:kept], widths, strict=False)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(b[:kept], widths, strict=False)).rstrip() for b in body]
    if kept < len(header):
        lines.append(f"({len(header) - kept} more column{'s' if len(header) - kept > 1 else ''}: "
                     f"{', '.join(header[kept:])})")
    return "\n".join(lines)


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """All rows, every column (the union of the rows' keys, in first-seen order)."""
    columns: dict[str, None] = {}
    for r in rows:
        columns.update(dict.fromkeys(r))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


def ui_page(experiment_id: str) -> str:
    """The address (after the UI's root) of an experiment's table of training runs; MLflow 3.17
    shows its GenAI overview instead unless the link asks for the machine-learning view."""
    return f"#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def mlflow_ui_hint(uri: str, experiment_id: str | None) -> str:
    """The command that opens the MLflow UI on this store, and the runs table's address."""
    page = ui_page(experiment_id) if experiment_id else ""
    if uri.startswith(("http://", "https://")):
        return f"MLflow UI: {uri.rstrip('/')}/{page}"
    return (f"MLflow UI: mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port 5000\n"
            f"           then open http://127.0.0.1:5000/{page}")


def final_report(ranked: Sequence[Any], summary: Mapping[str, Any], board: Sequence[Mapping[str, Any]], *,
                 metric: str | None, direction: str, results_path: Path, leaderboard_path: Path,
                 reproduce: str, ui_hint: str | None, width: int | None = None, model: str | None = None) -> str:
    """The text printed when a sweep ends: best value and params, held-out metrics, how to
    reproduce, the noise floor, the top trials, where MLflow shows them and the importance.
    ``ranked``: each search's outcomes (pipeline.sweep.summary.Outcomes), best search first; ``width``:
    a terminal's columns, which the table of top trials keeps within."""
    crossed = len(ranked) > 1
    top = ranked[0]
    best = top.best
    params = " ".join(f"{k}={v}" for k, v in best.params.items())
    lines = [f"Best {metric or 'objective'}={best.value:.6g} ({direction}) in round {best.round}: {params}"]
    lines += [f"  [{o.search.label}] best {o.best.value:.6g}" for o in (ranked if crossed else [])]
    if best.held_out:
        lines.append("Held-out test of that trial (never used to choose): "
                     + " ".join(f"{k}={v:.4f}" for k, v in sorted(best.held_out.items())))
    lines.append(f"Reproduce: {summary.get('reproduce') or reproduce}")
    for o in ranked:
        if o.noise and o.noise.get("std") is not None:
            first = o.noise["configs"][0]
            label = f"[{o.search.label}] " if crossed else ""
            lines.append(f"{label}Seed noise ({o.noise['seeds']} seeds of the top {len(o.noise['configs'])}): "
                         f"best configuration {first['mean']:.6g} ± {first['std']:.2g}, noise std "
                         f"{o.noise['std']:.2g}")
    if summary.get("within_seed_noise"):
        lines.append(f"Note: {summary['within_seed_noise']}")
    lines.append(f"Results: {results_path}")
    keys = [d.key for d in top.search.space.dims]
    lines.append(f"\nTop trials (all of them in {leaderboard_path}):")
    lines.append(table(board, keys, metric=metric or "objective", width=width))
    if ui_hint:
        lines.append(ui_hint)
    if model:
        lines.append(model)
    lines.append("")
    for o in ranked:
        if o.importance is not None:
            lines.append(f"{f'[{o.search.label}] ' if crossed else ''}{o.importance.table()}")
    return "\n".join(lines)
