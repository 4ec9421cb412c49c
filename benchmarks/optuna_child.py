"""Runs in the benchmark's own environment with current Optuna (benchmarks/optuna5.py), never
imports this project: studies driven over a pipe, one JSON object per line.

In: ``{"space": [...], "sampler": "tpe", "seed": 0, "n_trials": 100}`` starts a study; then for
each trial the child writes ``{"params": {...}}`` and reads ``{"value": float}`` (``null``: the
trial failed); after the last trial it writes ``{"done": true}`` and waits for the next study (or
end of input). With ``"pruner": {HyperbandPruner's arguments}`` the parent may first send
``{"report": value, "step": epoch}`` messages, each answered ``{"prune": bool}``, and end a trial
with ``{"pruned": true}``; with ``"n_trials": null`` the study runs until the parent answers a
trial's params with ``{"stop": true}``."""

import json
import sys
import warnings

import optuna

optuna.logging.set_verbosity(optuna.logging.ERROR)  # e.g. CMA-ES falling back to random for a choice
warnings.filterwarnings("ignore")


def distribution(dim):
    if dim["kind"] == "categorical":
        return optuna.distributions.CategoricalDistribution(dim["choices"])
    if dim["kind"] == "int":
        return optuna.distributions.IntDistribution(dim["low"], dim["high"], log=dim["log"])
    return optuna.distributions.FloatDistribution(dim["low"], dim["high"], log=dim["log"])


def sampler(name, seed):
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "tpe_multivariate":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if name == "tpe_univariate":
        return optuna.samplers.TPESampler(seed=seed, multivariate=False)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    raise ValueError(name)


def main():
    for line in sys.stdin:
        job = json.loads(line)
        if "probe" in job:
            try:
                import torch  # noqa: F401 - GPSampler needs it
                has_torch = True
            except ImportError:
                has_torch = False
            print(json.dumps({"optuna": optuna.__version__, "torch": has_torch}), flush=True)
            continue
        distributions = {d["key"]: distribution(d) for d in job["space"]}
        pruner = optuna.pruners.HyperbandPruner(**job["pruner"]) if job.get("pruner") else None
        study = optuna.create_study(direction="minimize", sampler=sampler(job["sampler"], job["seed"]), pruner=pruner)
        n_trials = job.get("n_trials")  # null: until the parent sends {"stop": true}
        while n_trials is None or len(study.trials) < n_trials:
            trial = study.ask(distributions)
            print(json.dumps({"params": trial.params}), flush=True)
            if not run_trial(study, trial):
                break
        print(json.dumps({"done": True}), flush=True)


def run_trial(study, trial):
    """Read the parent's messages about ``trial`` until it is told; False: the study is to stop."""
    for line in sys.stdin:
        message = json.loads(line)
        if message.get("stop"):
            return False
        if "report" in message:  # an epoch's value: answer whether the pruner stops the trial here
            trial.report(message["report"], message["step"])
            print(json.dumps({"prune": trial.should_prune()}), flush=True)
        elif message.get("pruned"):
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return True
        elif message["value"] is None:  # the trial failed (a diverged training run)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return True
        else:
            study.tell(trial, message["value"])
            return True
    return False


if __name__ == "__main__":
    main()
