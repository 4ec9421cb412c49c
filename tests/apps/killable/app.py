"""This app's own trial (``python -m pipeline``'s task) with faults for resume tests, at a known
point of a known job:

* ``PIPELINE_KILL_AT=<job number>:<epoch>`` SIGKILLs the process right after that epoch (its
  checkpoint written): the sweeping process itself under Hydra's basic launcher;
* ``PIPELINE_PAUSE_AT=<job number>:<epoch>`` writes ``paused`` into the job's directory after that
  epoch and waits there (up to a minute), so a test can send a signal into a running trial."""

import os
import runpy
import signal
import time
from pathlib import Path

import pipeline.train as train

_run = train.run


def _at(variable: str, epoch: int) -> bool:
    from hydra.core.hydra_config import HydraConfig

    job, _, at = os.environ.get(variable, ":").partition(":")
    return str(HydraConfig.get().job.num) == job and str(epoch) == at


def run(cfg, **kwargs):  # noqa: ANN001, ANN003, ANN201 - pipeline.train.run's signature
    from hydra.core.hydra_config import HydraConfig

    def on_epoch(epoch: int, metrics: dict) -> None:
        if _at("PIPELINE_KILL_AT", epoch):
            os.kill(os.getpid(), signal.SIGKILL)
        if _at("PIPELINE_PAUSE_AT", epoch):
            (Path(HydraConfig.get().runtime.output_dir) / "paused").touch()
            time.sleep(60)

    return _run(cfg, **kwargs, on_epoch=on_epoch)


train.run = run

if __name__ == "__main__":  # python -m pipeline, with the run above
    runpy.run_module("pipeline", run_name="__main__", alter_sys=True)
