"""``hydra/sweeper=zoom``: the sweeper's settings (pipeline.sweep.config, where each is written
once) registered in Hydra's ConfigStore."""

from hydra.core.config_store import ConfigStore

from pipeline.sweep.config import ZoomSweeperConf

ConfigStore.instance().store(group="hydra/sweeper", name="zoom", node=ZoomSweeperConf, provider="pipeline")
