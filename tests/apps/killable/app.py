"""This app's own trial (``python -m pipeline``'s task) with a fault for resume tests:
``PIPELINE_KILL_AT=<job number>:<epoch>`` SIGKILLs the process right after that epoch of that
job (its checkpoint written), the sweeping process itself under Hydra's basic launcher: a real
kill in the middle of a rung."""

import os
import runpy
import signal

import pipeline.train as train

_run = train.run


def run(cfg, **kwargs):  # noqa: ANN001, ANN003, ANN201 - pipeline.train.run's signature
    from hydra.core.hydra_config import HydraConfig

    job, _, epoch = os.environ.get("PIPELINE_KILL_AT", ":").partition(":")

    def on_epoch(e: int, metrics: dict) -> None:
        if str(HydraConfig.get().job.num) == job and str(e) == epoch:
            os.kill(os.getpid(), signal.SIGKILL)

    return _run(cfg, **kwargs, on_epoch=on_epoch)


train.run = run

if __name__ == "__main__":  # python -m pipeline, with the run above
    runpy.run_module("pipeline", run_name="__main__", alter_sys=True)
