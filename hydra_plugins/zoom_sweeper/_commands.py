"""The sweep's reproduce and resume commands (pipeline.sweep.commands) from what Hydra's config
says of the command line: its config directories, search path and overrides."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from pipeline.sweep.commands import Commands, absolute, program


def commands(config: DictConfig, sweep_dir: Path) -> Commands:
    hydra = config.hydra
    config_dirs = tuple(f"--config-dir={Path(s.path).resolve()}" for s in hydra.runtime.get("config_sources", [])
                        if s.get("provider") == "command-line" and s.get("schema") == "file")
    given = any(o.lstrip("+").startswith("hydra.searchpath=") for o in hydra.overrides.hydra)
    cwd = Path(hydra.runtime.cwd)
    searchpath = (f"hydra.searchpath=[{','.join(absolute(str(p), cwd) for p in hydra.searchpath)}]",) if given else ()
    return Commands(program(), config_dirs, searchpath, tuple(hydra.overrides.hydra), tuple(hydra.overrides.task),
                    sweep_dir)
