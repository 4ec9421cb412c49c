"""Resume state of a sweep (``sweep_state.json``): what it was started with, its MLflow runs,
how far its rounds were logged, and whether it is running, finished or failed.

A sweep directory holds one sweep: a new sweep into it is refused, and resuming must repeat the
interrupted sweep's overrides (its job numbers and directories are reused, so anything else
would mix two searches)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline.atomic import can_create_in, nearest_existing, read_json, write_json_atomic
from pipeline.errors import ConfigError
from pipeline.search.schedule import Schedule


@dataclass
class SweepState:
    arguments: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    status: str = "new"  # running | finished | stopped (time budget) | interrupted | failed
    parent_run_id: str | None = None
    combo_run_ids: dict[str, str] = field(default_factory=dict)
    resume_command: str = ""
    rounds_logged: dict[str, int] = field(default_factory=dict)  # search index -> last round logged
    segments: list[list[int]] = field(default_factory=list)  # trials per round: as planned, then extensions
    resumed: bool = False  # read back from an interrupted sweep (not saved)

    @classmethod
    def open(cls, path: Path, *, resume: bool, arguments: Sequence[str], params: Mapping[str, Any]) -> SweepState:
        """The state to continue from (``resume``), or a new one; raises :class:`ConfigError`
        when the directory already holds a sweep, or holds none to resume, or another one."""
        root = path.parent
        if root.exists() and not root.is_dir():
            raise ConfigError("hydra.sweep.dir", str(root), "is a file, not a directory")
        if root.is_dir() and not can_create_in(root):
            raise ConfigError("hydra.sweep.dir", str(root), "is not writable (permissions or a read-only file system)")
        if not root.exists() and not can_create_in(nearest_existing(root)):
            raise ConfigError("hydra.sweep.dir", str(root), f"cannot be created: {nearest_existing(root)} is not a "
                              "writable directory")
        saved = read_json(path)
        if not resume:
            if saved is not None:
                raise ConfigError("hydra.sweep.dir", str(path.parent),
                                  "already holds a sweep; continue it with hydra.sweeper.resume=true "
                                  "or choose a new directory")
            return cls(list(arguments), dict(params))
        if saved is None:
            raise ConfigError("hydra.sweeper.resume", True, f"no sweep to resume in {path.parent} "
                              "(set hydra.sweep.dir to the interrupted sweep's directory)")
        if list(saved.get("arguments", [])) != list(arguments) or saved.get("params") != dict(params):
            raise ConfigError("hydra.sweeper.resume", True, "the overrides differ from the interrupted sweep's; "
                              f"resume with: {saved.get('resume_command')}")
        known = {k: saved[k] for k in cls.__dataclass_fields__ if k in saved and k != "resumed"}
        return cls(**known, resumed=True)

    def schedule(self, planned: Schedule) -> tuple[Schedule, ...]:
        """The rounds this sweep runs: as ``planned`` for a new sweep; for a resumed one the rounds
        it had, plus, when ``n_trials`` grew, the extra trials as new rounds (by the rule)."""
        if not self.segments:
            self.segments = [list(planned.sizes)]
        if planned.fidelities:  # rungs are one plan: extending one would need more rungs above max
            if self.segments != [list(planned.sizes)]:
                raise ConfigError("hydra.sweeper.n_trials", sum(planned.sizes) - sum(planned.promoted),
                                  "a fidelity sweep cannot be extended or re-planned on resume; resume it with "
                                  "the settings it started with, or start a new sweep")
            return (planned,)
        done = sum(map(sum, self.segments))
        if planned.total < done:
            raise ConfigError("hydra.sweeper.n_trials", planned.total, f"the sweep already has {done} trials; "
                              f"resume it with n_trials >= {done}")
        if planned.total > done:
            self.segments.append(list(Schedule.plan(planned.total - done).sizes))
        return tuple(Schedule(tuple(sizes)) for sizes in self.segments)

    def logged(self, search: int) -> int:
        return self.rounds_logged.get(str(search), 0)

    def save(self, path: Path) -> None:
        data = asdict(self)
        data.pop("resumed")
        write_json_atomic(path, data)
