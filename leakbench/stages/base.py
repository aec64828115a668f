"""The one small interface every stage implements, built-in or third-party, and the stage registry.

A stage either rides along a target run that it shares with its neighbours (it contributes agent probes,
environment and stop policies, then reads what the run left), or runs its own process (`own_run`).
Stages are found through the `leakbench.stages` entry-point group; built-ins register there too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar, Protocol

from leakbench.analysis.model import StageReport
from leakbench.launcher import Probe, StopPolicy, TargetRun
from leakbench.target import TargetSpec


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What the user asked for on the command line that every stage may consult."""

    duration: float | None = None
    debug: bool = False
    load: str | None = None  # a command run beside the target (the service playbook's request generator)
    function: str | None = None  # a function to profile, as `module:qualname` or `path.py:function`
    repro: str | None = None  # a command for a simplified run of the target (the line_profile stage)
    repro_calls: int | None = None  # completed calls of the function after which that run stops
    attach_pid: int | None = None  # a process already running, watched instead of starting the target


@dataclass(slots=True)
class StageContext:
    """What a stage gets: the target, the run directory, and the reports of the stages before it."""

    target: TargetSpec
    run_dir: Path
    options: RunOptions
    earlier: dict[str, StageReport] = field(default_factory=dict)
    log: Callable[[str], None] = lambda _msg: None

    def stage_dir(self, name: str) -> Path:
        path = self.run_dir / "stages" / name
        path.mkdir(parents=True, exist_ok=True)
        return path


@dataclass(frozen=True, slots=True)
class Contribution:
    """What a ride-along stage adds to the shared target run."""

    probes: tuple[Probe, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    stop_policies: tuple[StopPolicy, ...] = ()
    rss_interval: float | None = None


class Stage(Protocol):
    """A stage of an investigation. `Params` is a frozen dataclass: its fields are the playbook keys."""

    kind: ClassVar[str]
    summary: ClassVar[str]
    own_run: ClassVar[bool]  # runs its own process (no shared target run)
    # A ride-along stage may also set `exclusive: ClassVar[bool] = True` to get a target run of its own,
    # when its instruments would disturb the other stages' (the native tracker and tracemalloc).
    params: Any

    def contribute(self, ctx: StageContext) -> Contribution:
        """For ride-along stages: what to run in the target. Own-run stages return Contribution()."""
        ...

    def finish(self, ctx: StageContext, run: TargetRun | None) -> StageReport:
        """Turn what the run (or the stage's own process) left into a report."""
        ...


StageFactory = Callable[[Any], Stage]


@dataclass(frozen=True, slots=True)
class StageType:
    kind: str
    summary: str
    params_type: type[Any]
    factory: StageFactory

    def defaults(self) -> dict[str, Any]:
        return dataclasses.asdict(self.params_type())

    def create(self, params: Mapping[str, Any] | None = None) -> Stage:
        return self.factory(self.params_type(**(params or {})))


_registry: dict[str, StageType] | None = None


def registry() -> dict[str, StageType]:
    """Every known stage kind, loaded once from the `leakbench.stages` entry points."""
    global _registry
    if _registry is None:
        found: dict[str, StageType] = {}
        for ep in entry_points(group="leakbench.stages"):
            cls = ep.load()
            found[cls.kind] = StageType(cls.kind, cls.summary, cls.Params, cls)
        _registry = found
    return _registry
