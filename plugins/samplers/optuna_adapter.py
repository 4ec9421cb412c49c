"""``sampler=optuna``: an installed Optuna sampler (TPE, CMA-ES, random; GP and QMC where a newer
Optuna has them) as a round's proposal engine, fed the trials so far and kept inside the round's
region. Optional: ``pip install -e .[optuna]``.

Each round builds an in-memory study, adds the history's trials that lie inside the region
(failures as FAIL; in a fidelity sweep only those of the highest fidelity with a success,
``pipeline.search.objective.one_fidelity``: an Optuna study holds one value per trial), then asks for
``n`` trials without telling results in between (a batch, like Optuna with ``n_jobs``). Numbers
are handed to Optuna as points of [0, 1) in each dimension's scale (``pipeline.search.space.encode``/
``decode``), so log, log1m and integer dimensions need no special case and every proposal is
mapped back by the project's one transform; a choice is a categorical.
Deterministic for a seed, stream and history: Optuna's sampler is seeded from them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.search.objective import Objective, one_fidelity
from pipeline.search.space import Choice, Dimension, SearchSpace
from pipeline.search.trial import Trial
from plugins.samplers.base import Sampler

SAMPLERS = {"tpe": "TPESampler", "cmaes": "CmaEsSampler", "random": "RandomSampler", "gp": "GPSampler",
            "qmc": "QMCSampler"}


class OptunaSampler(Sampler):
    default_scale = "log"
    adaptive = True

    def __init__(self, seed: int = 0, sampler: str = "tpe", options: dict[str, Any] | None = None) -> None:
        super().__init__(seed)
        try:
            import optuna
        except ImportError:
            raise ValueError("sampler needs Optuna: pip install -e .[optuna]") from None
        if sampler not in SAMPLERS or not hasattr(optuna.samplers, SAMPLERS[sampler]):
            known = [k for k, v in SAMPLERS.items() if hasattr(optuna.samplers, v)]
            raise ValueError(f"sampler {sampler!r} is not one of this Optuna's ({optuna.__version__}): {known}")
        self.optuna, self.kind, self.options = optuna, sampler, dict(options or {})

    @property
    def name(self) -> str:
        return f"optuna-{self.kind}"

    def sample(self, space: SearchSpace, n: int, *, stream: tuple[int, ...] = (),
               history: Sequence[Trial] = ()) -> list[dict[str, Any]]:
        optuna = self.optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        objective: Objective = getattr(history, "objective", None) or Objective()
        seed = int(self.rng(*stream).integers(2**31 - 1))
        engine = getattr(optuna.samplers, SAMPLERS[self.kind])(seed=seed, **self.options)
        study = optuna.create_study(direction=objective.direction.value, sampler=engine)
        distributions = {d.key: _distribution(optuna, d) for d in space.dims}
        out = []
        with warnings.catch_warnings():  # add_trial and create_trial are "experimental" in Optuna 2
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            for trial in one_fidelity(history):
                params = self._inside(space, trial)
                if params is not None:
                    study.add_trial(optuna.trial.create_trial(
                        params=params, distributions=distributions, value=trial.value if trial.ok else None,
                        state=optuna.trial.TrialState.COMPLETE if trial.ok else optuna.trial.TrialState.FAIL))
            asked_trials = [study.ask(distributions).params for _ in range(n)]
        for asked in asked_trials:
            out.append({d.key: asked[d.key] if isinstance(d, Choice) else self.values(d, np.array([asked[d.key]]))[0]
                        for d in space.dims})
        return out

    def _inside(self, space: SearchSpace, trial: Trial) -> dict[str, Any] | None:
        """The trial's params as Optuna sees them (points of [0, 1), choice strings), or ``None``
        when it lies outside the region (Optuna refuses values outside a distribution)."""
        params = {}
        for d in space.dims:
            value = trial.params.get(d.key)
            if value is None or not d.contains(value):
                return None
            params[d.key] = str(value) if isinstance(d, Choice) else float(self.units(d, [value])[0])
        return params


def _distribution(optuna: Any, dim: Dimension) -> Any:
    distributions = optuna.distributions
    if isinstance(dim, Choice):
        return distributions.CategoricalDistribution(list(dim.values))
    if hasattr(distributions, "FloatDistribution"):  # Optuna >= 3
        return distributions.FloatDistribution(0.0, 1.0)
    return distributions.UniformDistribution(0.0, 1.0)
