"""The findings that flow from the stages to the report, and the shape of evidence.json.

Field names follow the evidence contract (schema "leakbench.evidence/1"); never rename or drop one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

VerdictKind = Literal["leak", "no-leak", "oom", "inconclusive"]
Pattern = Literal["linear", "plateau", "sawtooth", "step", "flat"]
ExitStatus = Literal["ok", "exception", "memory-error", "killed", "timeout"]
StageStatus = Literal["ok", "skipped", "failed"]
Role = Literal["main", "child"]

SCHEMA = "leakbench.evidence/1"


@dataclass(frozen=True, slots=True)
class Frame:
    """One Python frame of a traceback, outermost-first order in a Stack."""

    file: str
    line: int
    function: str = ""
    text: str = ""


@dataclass(frozen=True, slots=True)
class TargetExit:
    """How the target ended."""

    code: int | None
    signal: int | None
    status: ExitStatus
    exception_type: str | None = None
    exception_message: str | None = None
    traceback: tuple[Frame, ...] = ()
    stopped_by: str | None = None  # why leakbench stopped it ("duration", "conclusive", "budget", "interrupt")

    def describe(self) -> str:
        if self.status == "timeout" and self.stopped_by == "detached":
            return "still running: leakbench attached to it and detached"
        if self.status == "timeout":
            return f"stopped by leakbench ({self.stopped_by or 'duration'})"
        if self.status == "ok" and self.code is None and self.signal is None:
            return "ended while leakbench was attached"
        if self.status == "killed":
            name = _signal_name(self.signal)
            return f"killed by {name}" + (" (as the OOM killer does)" if self.signal == 9 else "")
        if self.status in ("exception", "memory-error"):
            return f"raised {self.exception_type}: {self.exception_message}"
        return f"exited with code {self.code}"


def _signal_name(signum: int | None) -> str:
    import signal

    if signum is None:
        return "a signal"
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


@dataclass(frozen=True, slots=True)
class ProcessSeries:
    """RSS samples of one process: times in seconds since the target started, bytes."""

    pid: int
    role: Role
    times: tuple[float, ...]
    rss: tuple[int, ...]
    vms: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Trend:
    """What the RSS of one process did over the run."""

    pattern: Pattern
    slope_bytes_per_s: float
    r_squared: float
    growth_bytes: int
    start_bytes: int
    end_bytes: int
    peak_bytes: int
    duration_s: float
    plateau_at_s: float | None = None
    drops: int = 0


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: VerdictKind
    confidence: float
    growth_bytes_per_s: float
    pattern: Pattern
    summary: str
    seconds_to_limit: float | None = None
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    pid: int
    role: Role
    peak_rss_bytes: int
    growth_bytes_per_s: float
    pattern: Pattern = "flat"


@dataclass(frozen=True, slots=True)
class Suspect:
    """A source line that allocates memory that stays; ranked by the evidence behind it."""

    file: str
    line: int
    function: str
    bytes: int
    count: int
    pid: int
    stages: tuple[str, ...]
    visible_to_tracemalloc: bool
    native_frames: tuple[str, ...] = ()
    text: str = ""
    bytes_per_interval: float = 0.0
    count_per_interval: float = 0.0
    grew_in: float = 0.0  # fraction of intervals in which the site grew
    trend: str = ""  # "steady" (grows across most intervals), "plateau", "one-off", or "peak"
    rate_bytes_per_s: float = 0.0
    traceback: tuple[Frame, ...] = ()
    # How much of the growth each instrument saw at this line: tracemalloc sees Python's allocators only,
    # the native tracker every malloc/mmap; the difference is C-level memory (0: that stage did not see it).
    tracemalloc_bytes: int = 0
    native_bytes: int = 0
    library: bool = False  # the line is in the standard library or an installed package, not the user's code
    keeps: str = ""  # a line that stores what a library line allocates in a root: that line ("file:line")
    last_growth: int = 0  # what the line added over the last interval of tracemalloc's run (bytes)

    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class Retention:
    type: str
    count_growth: int
    bytes_growth: int
    pid: int
    root: str
    chain: tuple[str, ...]
    graph: str | None = None
    pattern: str = ""
    fix: str = ""
    bound: int | None = None  # the root's capacity in entries (lru_cache maxsize, deque maxlen), None: unbounded
    # The user's lines that add to the root, (file, line, function, source text): analysis/keepers.py
    kept_at: tuple[tuple[str, int, str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class StageReport:
    """What one stage says in evidence.json `stages`, plus what it adds to the joined evidence."""

    name: str
    status: StageStatus
    message: str
    suspects: tuple[Suspect, ...] = ()
    retention: tuple[Retention, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)


def to_jsonable(value: Any) -> Any:
    """Dataclasses and tuples to plain JSON values."""
    if hasattr(value, "__dataclass_fields__"):
        return {k: to_jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def stage_report_from_json(data: dict[str, Any]) -> StageReport:
    """A StageReport saved with to_jsonable, read back (for resumed runs and re-rendered reports)."""

    def frames(raw: list[dict[str, Any]]) -> tuple[Frame, ...]:
        return tuple(Frame(**f) for f in raw)

    suspects = tuple(
        Suspect(
            **{
                **s,
                "stages": tuple(s["stages"]),
                "native_frames": tuple(s.get("native_frames", ())),
                "traceback": frames(s.get("traceback", [])),
            }
        )
        for s in data.get("suspects", [])
    )
    retention = tuple(
        Retention(
            **{
                **r,
                "chain": tuple(r["chain"]),
                "kept_at": tuple((str(k[0]), int(k[1]), str(k[2]), str(k[3])) for k in r.get("kept_at", ())),
            }
        )
        for r in data.get("retention", [])
    )
    return StageReport(data["name"], data["status"], data["message"], suspects, retention, data.get("data", {}))
