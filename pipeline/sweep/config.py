"""The zoom sweeper's settings (``hydra.sweeper.*``), each written once: its name, type and default
in these dataclasses, its help and its check in the field's metadata.

Everything else is made from them: Hydra's ConfigStore entry ``hydra/sweeper=zoom``
(hydra_plugins/zoom_sweeper/config.py registers these classes), the defaults and checks of the
frozen settings (pipeline.sweep.settings), and the reference page docs/configuration.md
(``python -m pipeline.sweep.config > docs/configuration.md``; tests/test_settings.py fails when
the page is out of date). The zoom policy's and the fidelity's defaults are those of their own
classes (pipeline.search.zoom.ZoomPolicy, pipeline.search.fidelity.Fidelity), read here, and
those classes check their own ranges.

Stdlib and the engine's dataclasses only: Hydra imports this at start-up in every app."""

# No `from __future__ import annotations`: OmegaConf reads these annotations at run time.
import dataclasses
import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Dict, Optional  # OmegaConf's structured-config types

from pipeline.search.fidelity import Fidelity
from pipeline.search.objective import Objective
from pipeline.search.schedule import DEFAULT_N_TRIALS
from pipeline.search.zoom import ZoomPolicy

Check = Callable[[Any], Optional[str]]  # the problem with a value, or None when it is fine
DEFAULT_SAMPLER = {"_target_": "plugins.samplers.gp.GPSampler", "seed": 0}
TRIAL_KEYS = ("parent_run_id", "uri", "run_name", "tags")  # what a task may take for MLflow lineage


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def positive_int(value: Any) -> Optional[str]:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return "must be a positive integer"
    return None


def _trials(value: Any) -> Optional[str]:
    return None if value is None or positive_int(value) is None else "must be a positive integer (or null)"


def optional(check: Check) -> Check:
    """``check`` for any value but null."""
    return lambda value: None if value is None else check(value)


def _positive_seconds(value: Any) -> Optional[str]:
    return None if value is None or (_number(value) and value > 0) else \
        "must be a positive number of seconds (or null)"


def _share(value: Any) -> Optional[str]:
    return None if _number(value) and 0 <= value <= 1 else "must be in [0, 1]"


def _count(value: Any) -> Optional[str]:
    return None if not isinstance(value, bool) and isinstance(value, int) and value >= 0 else \
        "must be an integer >= 0"


def _direction(value: Any) -> Optional[str]:
    return None if value in ("minimize", "maximize") else "must be minimize or maximize"


def _model_name(value: Any) -> Optional[str]:
    return None if value is None or (isinstance(value, str) and value.strip()) else "must be a model name or null"


def _uri(value: Any) -> Optional[str]:
    return None if value is None or (isinstance(value, str) and value.strip()) else \
        "must be a tracking URI or null (no MLflow)"


def _name(value: Any) -> Optional[str]:
    return None if isinstance(value, str) and value.strip() else "must be a non-empty name"


def setting(default: Any = None, *, help: str, check: Optional[Check] = None,
            factory: Optional[Callable[[], Any]] = None) -> Any:
    """A field with its ``help`` text and ``check`` (``factory`` for mutable defaults)."""
    metadata = {"help": help, "check": check}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class TrackingConf:
    uri: Optional[str] = setting(None, check=_uri, help=(
        "MLflow for the sweep; null: none. A URI gives a parent run per sweep (and per crossed combination) with "
        "one child run per trial. This app: its own tracking.uri"))
    experiment: str = setting("zoom", check=_name, help="the MLflow experiment of the sweep's runs")
    trial_keys: Optional[Dict[str, str]] = setting(None, help=(
        "which of the task's config keys take the lineage (parent_run_id, uri, run_name, tags), so the task logs "
        "its own trial run; null: the sweeper logs each trial's run itself (params, objective, status, round)"))


@dataclass
class FidelityConf:
    key: Optional[str] = setting(Fidelity.key, help=(
        "the task's config key of the budget each trial gets (this app: trainer.epochs): the rounds become rungs "
        "of successive halving from min to max rising by eta, the best of a rung promoted to continue at the "
        "next; null: every trial at the task's own budget"))
    # Any, not float: integers stay integers (epochs 2, 7, 20, not 6.67)
    min: Any = setting(Fidelity.min, help="the least budget a trial gets (the first rung)")
    max: Any = setting(Fidelity.max, help="the most budget a trial gets (the last rung)")
    eta: int = setting(Fidelity.eta, help="the factor between rungs; the best 1/eta of a rung are promoted")
    resume_key: Optional[str] = setting(Fidelity.resume_key, help=(
        "the task's config key of a directory to keep its checkpoint in (this app: trainer.resume_from): "
        "promoted trials continue from it; null: promoted trials retrain from scratch"))


_POLICY = ZoomPolicy()


@dataclass
class ZoomSweeperConf:
    _target_: str = "hydra_plugins.zoom_sweeper.zoom_sweeper.ZoomSweeper"
    # settings arrive as plain values; the sampler is built (and checked) by the sweeper itself
    _recursive_: bool = False
    _convert_: str = "all"

    params: Dict[str, Any] = setting(factory=dict, help=(
        "the search space: dotted task keys -> Hydra's override grammar (interval, choice, range, tag), as the "
        "Optuna sweeper reads it; search expressions on the command line replace entries of the same key"))
    n_trials: Optional[int] = setting(None, check=_trials, help=(
        f"trials in all (per crossed combination), split into rounds by the documented rule unless rounds and/or "
        f"trials_per_round are given; null everywhere: {DEFAULT_N_TRIALS}. With a fidelity schedule: the "
        f"configurations started"))
    rounds: Optional[int] = setting(None, check=_trials, help="rounds of the zoom; null: by the rule")
    trials_per_round: Optional[int] = setting(None, check=_trials, help=(
        "trials in each round; null: by the rule"))
    timeout_s: Optional[float] = setting(None, check=_positive_seconds, help=(
        "no new trial starts after this many seconds of the sweep; null: no limit"))
    fidelity: FidelityConf = setting(factory=FidelityConf, help="coarse to fine in the budget each trial gets")
    budget: Optional[float] = setting(None, help=(
        "with a fidelity schedule: caps the fidelity spent in all (epochs here); the dry run says whether "
        "n_trials or budget binds"))
    batch_size: Optional[int] = setting(None, check=optional(positive_int), help=(
        "a model-guided sampler (gp, parzen, optuna) proposes this many trials at a time, each batch seeing the "
        "results of the ones before; null: as many as the launcher runs at once (1 for the basic launcher, n_jobs "
        "for joblib, a whole round for Ray and SLURM)"))
    top_k: Optional[int] = setting(_POLICY.top_k, help=(
        "the next round zooms onto the top_k best successful trials so far; null: top_fraction of a round"))
    top_fraction: float = setting(_POLICY.top_fraction, help="the share of a round's budget zoomed onto")
    zoom: str = setting(_POLICY.mode.value, help=(
        "trust: keep shrink x the current width centred on the best trial (measured best on the tuning seeds, "
        "docs/performance.md); span: the span of the top trials widened by margin x the current width"))
    margin: float = setting(_POLICY.margin, help="zoom=span: widen the top trials' span by this share of the width")
    shrink: float = setting(_POLICY.shrink, help="zoom=trust: the share of the current width kept")
    min_width: float = setting(_POLICY.min_width, help="never narrower than this share of the original width")
    explore: float = setting(_POLICY.explore, help=(
        "every round after the first draws max(1, round(explore x its size)) trials uniformly from the whole "
        "original space, so no region is ruled out for good"))
    narrow_choices: bool = setting(_POLICY.narrow_choices, help=(
        "keep only the top trials' values of a choice (off: the model-guided sampler re-weights choices itself)"))
    max_failure_rate: float = setting(0.5, check=_share, help=(
        "stop the sweep when more than this share of the trials so far has failed"))
    dry_run: bool = setting(False, help="print the space, scales, trials and rounds; launch nothing")
    direction: str = setting(Objective.direction.value, check=_direction, help=(
        "minimize or maximize the value the task returns (this app: objective.direction)"))
    metric: Optional[str] = setting(None, help=(
        "the name of that value, for reports and MLflow (this app: objective.metric)"))
    sampler: Dict[str, Any] = setting(factory=lambda: dict(DEFAULT_SAMPLER), help=(
        "the sampler for apps whose config has no sampler group (_target_ and seed); this app: its sampler group"))
    check: Optional[str] = setting(None, help=(
        "dotted path of a function called with each combination's composed task config before anything is "
        "launched; it raises on bad input (this app: pipeline.train.check)"))
    export: Optional[str] = setting(None, help=(
        "dotted path of a function called after the sweep as f(job_dir=, run_id=, tracking_uri=) with the best "
        "trial's job directory and the sweep's MLflow run; it logs that trial's model there and returns its URI "
        "(this app: pipeline.app.export.log_model)"))
    register_model: Optional[str] = setting(None, check=_model_name, help=(
        "register what export logged under this name in MLflow's model registry"))
    resume: bool = setting(False, help=(
        "continue the interrupted sweep in hydra.sweep.dir: finished trials are read back, not run again"))
    importance: bool = setting(True, help=(
        "after the search: which parameters mattered (importance.yaml, importance.png, MLflow metrics)"))
    plots: bool = setting(True, help="PNG figures in plots/ of the sweep directory and on the sweep's MLflow run")
    quiet: bool = setting(False, help="only the final report on the terminal")
    verbose: bool = setting(False, help="every job's output and the launcher's per-job lines as well")
    final_seeds: int = setting(0, check=_count, help=(
        "noise floor: re-run the final_top best configurations with this many other seeds (the task's seed_key + "
        "1, + 2, ...) and report mean +- spread; 0: off"))
    final_top: int = setting(3, help="how many of the best configurations final_seeds re-runs")
    seed_key: str = setting("seed", help="the task's config key of its seed, which final_seeds varies")
    tracking: TrackingConf = setting(factory=TrackingConf, help="the sweep's MLflow runs")


GROUPS = {"fidelity": FidelityConf, "tracking": TrackingConf}  # nested settings: their dataclass


def defaults() -> dict[str, Any]:
    """Every setting's default, nested groups as dicts (the private ``_target_`` ones left out)."""
    return {k: v for k, v in dataclasses.asdict(ZoomSweeperConf()).items() if not k.startswith("_")}


def fields(cls: type = ZoomSweeperConf, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field]]:
    """``(dotted name, field)`` of every setting, nested groups' settings after their group's."""
    for f in dataclasses.fields(cls):
        if f.name.startswith("_"):
            continue
        yield prefix + f.name, f
        if f.name in GROUPS and not prefix:
            yield from fields(GROUPS[f.name], f"{f.name}.")


def reference() -> str:
    """docs/configuration.md: every setting with its type, default and help."""
    lines = ["# Configuration reference: `hydra.sweeper.*`", "",
             "Generated from `pipeline/sweep/config.py` by `python -m pipeline.sweep.config > docs/configuration.md`;",
             "do not edit by hand. Set any of them on the command line (`hydra.sweeper.n_trials=100`) or in a",
             "sweeper config file (this app's: `conf/hydra/sweeper/pipeline_zoom.yaml`, which sets `n_trials`,",
             "`fidelity`, `check`, `export`, `direction`, `metric` and `tracking` for it). `python -m pipeline --cfg",
             "hydra -p hydra.sweeper` prints the values a sweep would use.", "",
             "| setting | type | default | what it does |", "| --- | --- | --- | --- |"]
    for name, f in fields():
        if name in GROUPS:
            lines.append(f"| `{name}` | group | | {f.metadata['help']}: the `{name}.*` rows |")
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        lines.append(f"| `{name}` | {_type_name(f.type)} | `{_yaml(default)}` | {f.metadata['help']} |")
    return "\n".join(lines) + "\n"


def _type_name(annotation: Any) -> str:
    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    for old, new in (("typing.", ""), ("Optional[", "null or "), ("Dict[str, Any]", "mapping"),
                     ("Dict[str, str]", "mapping"), ("Any", "number")):
        text = text.replace(old, new)
    return text.rstrip("]").replace("float", "number")


def _yaml(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    return str(value)


if __name__ == "__main__":
    sys.stdout.write(reference())
