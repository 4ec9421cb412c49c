"""``hydra/sweeper=zoom``: the sweeper's settings, registered in Hydra's ConfigStore."""

# No `from __future__ import annotations`: Hydra loads this module outside sys.modules while
# scanning plugins, and OmegaConf reads these annotations at run time.
from dataclasses import dataclass, field
from typing import Any, Dict, Optional  # noqa: UP035 - OmegaConf's structured-config types

from hydra.core.config_store import ConfigStore


@dataclass
class TrackingConf:
    # MLflow for the sweep: null = none. A URI gives a parent run per sweep (and per crossed
    # combination) with one child run per trial.
    uri: Optional[str] = None
    experiment: str = "zoom"
    # Which of the task's config keys take the lineage, so the task logs its own trial run:
    # parent_run_id, uri, run_name, tags (e.g. tags: tracking.tags). Null: the sweeper logs each
    # trial's run itself (params, objective, status, round).
    trial_keys: Optional[Dict[str, str]] = None


@dataclass
class FidelityConf:
    # Coarse to fine in the budget each trial gets (pipeline/fidelity.py): with `key` set (the
    # task's config key of the budget, e.g. trainer.epochs) the rounds become rungs of successive
    # halving at fidelities from `min` to `max` rising by `eta`; the best of a rung are promoted
    # to the next and continue there, from the checkpoint the task keeps where `resume_key` says
    # (the sweeper passes the trial's first job directory; null: promoted trials retrain). Null
    # `key`: every trial at the task's own budget.
    key: Optional[str] = None
    min: Any = None  # Any, not float: integers stay integers (epochs 2, 7, 20, not 6.67)
    max: Any = None
    eta: int = 3
    resume_key: Optional[str] = None


@dataclass
class ZoomSweeperConf:
    _target_: str = "hydra_plugins.zoom_sweeper.zoom_sweeper.ZoomSweeper"
    # settings arrive as plain values; the sampler is built (and checked) by the sweeper itself
    _recursive_: bool = False
    _convert_: str = "all"

    # The search space: dotted task keys -> Hydra override grammar (as the Optuna sweeper reads).
    # Command-line search expressions replace entries with the same key.
    params: Dict[str, Any] = field(default_factory=dict)
    # The budget: n_trials trials in all (per crossed combination), split into rounds by a
    # documented rule (pipeline/schedule.py) unless rounds and/or trials_per_round are given;
    # null everywhere: 48. No new trial starts after timeout_s seconds (null: no limit).
    n_trials: Optional[int] = None
    rounds: Optional[int] = None
    trials_per_round: Optional[int] = None
    timeout_s: Optional[float] = None
    # With a fidelity schedule: n_trials counts configurations started, and budget (optional) caps
    # the fidelity spent in all (epochs here); the dry run says which one binds.
    fidelity: FidelityConf = field(default_factory=FidelityConf)
    budget: Optional[float] = None
    # A model-guided sampler (gp, parzen, optuna) proposes this many trials at a time, each batch
    # seeing the results of the ones before; null: as many as the launcher runs at once (1 for
    # the basic launcher, n_jobs for joblib; a whole round for Ray and SLURM).
    batch_size: Optional[int] = None
    # The next round zooms onto the top_k best successful trials so far (or, when top_k is
    # null, onto top_fraction of a round), in each dimension's scale: zoom=span keeps their span
    # widened by margin x the current width; zoom=trust keeps shrink x the current width centred
    # on the best trial (the default: it won on the benchmark's tuning seeds, README >
    # Performance). Never narrower than min_width x the original width. Every round after the
    # first also draws max(1, round(explore x its size)) trials uniformly from the whole original
    # space, so no region is ruled out for good; narrow_choices=true would keep only the top
    # trials' values of a choice (off: the model-guided sampler re-weights choices itself).
    top_k: Optional[int] = None
    top_fraction: float = 0.25
    zoom: str = "trust"
    margin: float = 0.1
    shrink: float = 0.6
    min_width: float = 0.05
    explore: float = 0.125
    narrow_choices: bool = False
    # Stop the sweep when more than this share of the trials so far has failed.
    max_failure_rate: float = 0.5
    # Print the space, scales, trials and rounds; launch nothing.
    dry_run: bool = False
    # The objective: the direction of the value the task returns, and its name (reports, MLflow).
    direction: str = "minimize"
    metric: Optional[str] = None
    # Fallback for apps whose config has no `sampler` group: the model-guided default.
    sampler: Dict[str, Any] = field(default_factory=lambda: {
        "_target_": "plugins.samplers.gp.GPSampler", "seed": 0})
    # Optional dotted path of a function called with each combination's composed task config
    # before anything is launched (e.g. pipeline.config.validate); it raises on bad input.
    check: Optional[str] = None
    # Optional dotted path of a function called after the sweep as f(job_dir=, run_id=,
    # tracking_uri=) with the best trial's job directory and the sweep's MLflow run; it logs that
    # trial's model there and returns its URI (this app: pipeline.app.export.log_model).
    export: Optional[str] = None
    # Register what `export` logged under this name in MLflow's model registry.
    register_model: Optional[str] = None
    # Continue the interrupted sweep in hydra.sweep.dir: finished trials are read back, not re-run.
    resume: bool = False
    # After the search: which parameters mattered (importance.yaml, importance.png, MLflow metrics).
    importance: bool = True
    # PNG figures (plots/ in the sweep directory and on the sweep's MLflow run).
    plots: bool = True
    # The terminal: by default one live status line (progress lines off a terminal) while each
    # job's output goes to the log file in its directory. quiet: only the final report;
    # verbose: every job's output and the launcher's per-job lines as well.
    quiet: bool = False
    verbose: bool = False
    # Noise floor: re-run the final_top best configurations with final_seeds other seeds (the
    # task's `seed_key` + 1, + 2, ...) and report mean +- spread; 0 turns it off.
    final_seeds: int = 0
    final_top: int = 3
    seed_key: str = "seed"
    tracking: TrackingConf = field(default_factory=TrackingConf)


ConfigStore.instance().store(group="hydra/sweeper", name="zoom", node=ZoomSweeperConf, provider="pipeline")
