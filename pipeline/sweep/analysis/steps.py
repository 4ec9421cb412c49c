"""After a search: which parameters mattered (importance) and the figures (plots),
written into the search's folder and logged on its MLflow run."""

from __future__ import annotations

import logging

from pipeline.search.objective import one_fidelity
from pipeline.sweep.analysis.importance import MIN_TRIALS_AT_ONE_FIDELITY
from pipeline.sweep.files import IMPORTANCE_FIGURE, IMPORTANCE_FILE, PLOTS_DIR
from pipeline.sweep.lineage import Lineage
from pipeline.sweep.summary import Outcomes

log = logging.getLogger("pipeline.sweep")
BEST_CURVES = 3  # learning curves of this many best trials


def importance(out: Outcomes, metric: str | None, step: int, lineage: Lineage) -> None:
    """``importance.yaml``, a bar chart and ``importance/<key>`` metrics; skipped, with a note,
    when too few trials succeeded."""
    from pipeline.atomic import write_yaml_atomic
    from pipeline.sweep.analysis.importance import bar_chart, estimate

    search, result = out.search, out.result
    assert result is not None
    trials = one_fidelity(result.trials, enough=MIN_TRIALS_AT_ONE_FIDELITY)  # values of one fidelity only
    rows = [{"params": t.params, "value": t.value} for t in trials]
    if trials and trials[0].fidelity is not None:
        log.info(f"[{search.label}] importance from the {len(trials)} trials at fidelity {trials[0].fidelity:g}")
    try:
        out.importance = estimate(search.space, rows, search.sampler.scale_of, metric=metric,
                                  noise_std=(out.noise or {}).get("std"))
    except ValueError as exc:
        log.warning(f"[{search.label}] no importance analysis: {exc}")
        return
    folder = search.directory.path
    data = out.importance.as_dict()
    if trials and trials[0].fidelity is not None:
        data["fidelity"] = trials[0].fidelity
    write_yaml_atomic(folder / IMPORTANCE_FILE, data)
    bar_chart(out.importance, folder / IMPORTANCE_FIGURE)
    metrics = {}
    for p in out.importance.params:
        metrics[f"importance/{p.key}"] = p.share
        metrics[f"importance_spread/{p.key}"] = p.spread
    lineage.record(search, metrics=metrics, step=step, files=[folder / IMPORTANCE_FILE, folder / IMPORTANCE_FIGURE])


def plots(out: Outcomes, metric: str | None, lineage: Lineage) -> None:
    """The narrowing per round and parameter, the sampler comparison, and the best trials'
    learning curves (when their runs are in MLflow), under ``plots/``."""
    from pipeline.sweep.analysis import plots as figures

    search, result = out.search, out.result
    assert result is not None
    folder = search.directory.plots
    figures.zoom_figure(figures.space_rounds(result), search.sampler.scale_of, folder / "zoom.png",
                        metric or "objective")
    figures.sampler_figure(folder / "samplers.png")
    best = [t for t in result.objective.rank(result.trials) if t.run_id][:BEST_CURVES]
    histories = lineage.histories([t.run_id for t in best])
    if histories:
        figures.best_trials_figure({t.name: histories[t.run_id] for t in best}, folder / "best_trials.png")
    lineage.record(search, files=sorted(folder.glob("*.png")), folder=PLOTS_DIR)
