"""Faults at a known point of a known trial of ``python -m pipeline``, for resume tests. Put this
directory on ``PYTHONPATH``: Python imports ``sitecustomize`` at start-up in every process, the
sweep's and its launcher's workers alike, and with one of these variables set the training
stage's ``run`` (``pipeline.train.run``, which the entry point calls) gets an ``on_epoch`` hook:

* ``PIPELINE_KILL_AT=<job number>:<epoch>`` SIGKILLs the process right after that epoch (its
  checkpoint written): the sweeping process itself under Hydra's basic launcher;
* ``PIPELINE_PAUSE_AT=<job number>:<epoch>[:<seconds>]`` writes ``paused`` into the job's
  directory after that epoch and waits there (60 s unless given), so a test can act while the
  trial runs."""

import os

if os.environ.get("PIPELINE_KILL_AT") or os.environ.get("PIPELINE_PAUSE_AT"):
    import signal
    import time
    from pathlib import Path

    import pipeline.train as train  # the package only: numpy loads later, after the entry point chose its kernels

    def _at(variable: str, epoch: int) -> bool:
        from hydra.core.hydra_config import HydraConfig

        job, at, *_ = (os.environ.get(variable) or ":").split(":")
        return str(HydraConfig.get().job.num) == job and str(epoch) == at

    def run(cfg, **kwargs):  # noqa: ANN001, ANN003, ANN202 - pipeline.train.run's signature
        from hydra.core.hydra_config import HydraConfig

        def on_epoch(epoch: int, metrics: dict) -> None:
            if _at("PIPELINE_KILL_AT", epoch):
                os.kill(os.getpid(), signal.SIGKILL)
            if _at("PIPELINE_PAUSE_AT", epoch):
                (Path(HydraConfig.get().runtime.output_dir) / "paused").touch()
                time.sleep(float((os.environ["PIPELINE_PAUSE_AT"].split(":") + ["60"])[2]))

        from pipeline.train.stage import run as _run

        return _run(cfg, **kwargs, on_epoch=on_epoch)

    train.run = run
