"""A foreign Hydra app for the zoom sweeper: the sphere function x^2 + y^2 (minimum 0 at 0, 0);
with ``steps`` set, plus 1/steps (a budget whose low values give biased estimates, for fidelity
sweeps; the app keeps no checkpoint).

``SPHERE_KILL_AT=<job number>`` makes that job SIGKILL its own process (the sweeping process,
under Hydra's basic launcher): a real interruption at a known point, for resume tests."""

import os
import signal

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig


@hydra.main(config_path=".", config_name="sphere", version_base="1.3")
def main(cfg: DictConfig) -> float:
    if os.environ.get("SPHERE_KILL_AT") == str(HydraConfig.get().job.num):
        os.kill(os.getpid(), signal.SIGKILL)
    value = float(cfg.x) ** 2 + float(cfg.y) ** 2
    return value + 1.0 / cfg.steps if cfg.get("steps") else value


if __name__ == "__main__":
    main()
