"""Stage `backrefs`: which types grow in count, and the reference chain from a root that keeps them alive."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from leakbench.analysis.keepers import lines_adding_to
from leakbench.analysis.model import Retention, StageReport
from leakbench.analysis.retention import Checkpoint, TypeGrowth, chain_text, facts_from, rank_growth, recognise
from leakbench.launcher import AGENT_DIR, LiveRun, Probe, TargetRun, rules_from_hello
from leakbench.report.graphs import render_dot
from leakbench.sourceinfo import function_at, line_text
from leakbench.stages.base import Contribution, StageContext
from leakbench.units import human_bytes

GROWING_SHOWN = 10


@dataclass(frozen=True, slots=True)
class BackrefsParams:
    interval: float = 1.0  # seconds between type counts (stretched when counting the heap is slow)
    max_depth: int = 12  # references followed up from a sampled object before giving up on finding a root
    types: tuple[str, ...] = ()  # types to follow (`list`, `mymod.MyClass`); empty: the ones that grow most
    samples: int = 5  # objects sampled per type
    top_types: int = 4  # growing types followed when `types` is empty
    min_growth: int = 50  # objects (or container entries) a type must gain to count as growing
    at: float | None = None  # take the chains this many seconds after start (then stop the target)


class ChainsTakenPolicy:
    """With `at`: stop the target once the probe has taken its chains; the rest of the run adds nothing."""

    def __init__(self, at: float) -> None:
        self.at = at

    def should_stop(self, live: LiveRun) -> str | None:
        if live.elapsed < self.at:
            return None
        events = live.events()
        if any(e.get("event") == "backrefs-chase" for evs in events.values() for e in evs):
            return "chains taken"
        return None


def type_matches(name: str, key: str) -> bool:
    """`list` matches the builtin, `MyClass` any class of that name, `mymod.MyClass` exactly that one."""
    return key == name or key.rsplit(".", 1)[-1] == name


class BackrefsStage:
    kind: ClassVar[str] = "backrefs"
    summary: ClassVar[str] = "growing types and the reference chain from a root that keeps them alive"
    own_run: ClassVar[bool] = False
    Params = BackrefsParams

    def __init__(self, params: BackrefsParams) -> None:
        self.params = params

    def contribute(self, ctx: StageContext) -> Contribution:
        p = self.params
        options: dict[str, Any] = {
            "interval": p.interval,
            "max_depth": p.max_depth,
            "types": list(p.types),
            "samples": p.samples,
            "top_types": p.top_types,
            "min_growth": p.min_growth,
            "at": p.at,
            # Suspect lines of earlier runs: samples allocated there are preferred (needs tracemalloc running).
            "prefer_sites": [[s.file, s.line] for r in ctx.earlier.values() for s in r.suspects[:5]],
        }
        probe = Probe("backrefs", str(AGENT_DIR / "backrefs_probe.py"), options)
        policies = (ChainsTakenPolicy(p.at),) if p.at is not None else ()
        return Contribution(probes=(probe,), stop_policies=policies)

    def finish(self, ctx: StageContext, run: TargetRun | None) -> StageReport:
        if run is None:
            return StageReport(self.kind, "skipped", "no target run")
        series: dict[int, list[Checkpoint]] = {}
        costs: list[float] = []
        size_costs: list[float] = []  # the size watch: what roots hold, and tracemalloc's traces when read
        for pid in sorted(run.events):
            for e in run.events_of("backrefs-counts", pid):
                loaded = _load_counts(Path(e["path"]))
                if loaded is not None:
                    t = e["taken_at"] - run.started_at
                    counts, user = loaded
                    series.setdefault(pid, []).append(Checkpoint(t, counts, int(e.get("modules", 0)), user))
                    costs.append(float(e.get("cost_s", 0.0)))
                    size_costs.append(float(e.get("sizes_cost_s", 0.0)))
        if not series:
            return StageReport(self.kind, "failed", "the target left no backrefs checkpoint")
        growth = {pid: rank_growth(s, self.params.min_growth) for pid, s in series.items()}
        results = self._results(run)
        retention, chains = self._retention(ctx, run, results, series)
        unknown = [
            name
            for name in self.params.types
            if not any(type_matches(name, k) for ps in series.values() for cp in ps for k in cp.counts)
            and not any(type_matches(name, r["type"]) for _, r in results)
        ]
        data: dict[str, Any] = {
            "interval": self.params.interval,
            "checkpoints": sum(len(s) for s in series.values()),
            "counting_cost_s": round(max(costs), 4) if costs else 0.0,
            "size_watch_cost_s": round(max(size_costs), 4) if size_costs else 0.0,
            "growing": [_growth_row(pid, g) for pid, rows in growth.items() for g in rows[:GROWING_SHOWN]],
            "chains": chains,
            "requested": list(self.params.types),
            "unknown_types": unknown,
        }
        if unknown:
            grown = ", ".join(f"{g.type} (+{g.count_growth})" for rows in growth.values() for g in rows[:8])
            message = f"no type {', '.join(unknown)} in the target; types that grew: {grown or 'none'}"
            return StageReport(self.kind, "failed", message, data=data)
        message = f"{data['checkpoints']} type counts"
        if retention:
            top = retention[0]
            grew = f"+{top.count_growth} (~{human_bytes(top.bytes_growth)})"
            if next((c["growth"] for c in chains if c["pid"] == top.pid and c["type"] == top.type), "") == "size":
                grew = f"grew by ~{human_bytes(top.bytes_growth)} in size,"
            message += f"; {top.type} {grew} kept alive by {top.root} ({top.pattern})"
        elif self.params.types:
            message += "; " + _not_grown(self.params.types, series, growth)
            data["not_grown"] = _not_grown(self.params.types, series, growth)
        else:
            message += "; no type grew by more than " + str(self.params.min_growth) + " objects"
        return StageReport(self.kind, "ok", message, retention=tuple(retention), data=data)

    def _results(self, run: TargetRun) -> list[tuple[int, dict[str, Any]]]:
        """The latest chain result per (pid, type): taken while the objects were alive."""
        latest: dict[tuple[int, str], dict[str, Any]] = {}
        for pid in sorted(run.events):
            for e in run.events_of("backrefs", pid):
                path = Path(e["path"])
                try:
                    result = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue
                if self.params.types and not any(type_matches(n, result["type"]) for n in self.params.types):
                    continue
                latest[(pid, result["type"])] = result
        return [(pid, r) for (pid, _), r in latest.items()]

    def _retention(
        self,
        ctx: StageContext,
        run: TargetRun,
        results: list[tuple[int, dict[str, Any]]],
        series: dict[int, list[Checkpoint]],
    ) -> tuple[list[Retention], list[dict[str, Any]]]:
        # Weak references keep nothing alive: one that grows is the bookkeeping of something else that does
        # (logging's weakrefs to every handler ever made), so it comes after what it points to. A type that
        # stopped growing well before the end (an index built at start-up, caught while it was filling) comes
        # after one that still grows, however much bigger it is.
        ranked = sorted(
            results,
            key=lambda pr: (
                pr[1]["status"] in ("rooted", "cycle"),
                not pr[1]["type"].startswith("weakref."),
                pr[1].get("mode") == "size" or _still_growing(series.get(pr[0], []), pr[1]["type"]),
                pr[1].get("bytes_growth", 0),
            ),
            reverse=True,
        )
        # A type that no root was found for is kept in the details, but it makes evidence only when asked
        # for by name or when nothing better was found: "referenced from native code" is a weak claim.
        strong = [pr for pr in ranked if pr[1]["status"] in ("rooted", "cycle")]
        retention: list[Retention] = []
        chains: list[dict[str, Any]] = []
        for pid, result in ranked:
            finding = recognise(facts_from(result))
            # a root in a forked worker is that worker's: its globals are not the parent's
            root = str(result["root"]["words"])
            if run.roles.get(pid, "main") == "child" and result["status"] == "rooted":
                root += f" in pid {pid}"
            safe = "".join(ch if ch.isalnum() else "_" for ch in result["type"])
            base = ctx.run_dir / "images" / f"backrefs-{pid}-{safe}"
            try:
                source = Path(result["dot_path"]).read_text()
            except (OSError, KeyError):
                source = ""
            rendered = render_dot(source, base) if source else None
            graph = str(rendered.image.relative_to(ctx.run_dir)) if rendered and rendered.image else None
            chain = tuple(str(s) for s in result.get("chain", []))
            weak = result["status"] not in ("rooted", "cycle")
            if not (weak and strong and not self.params.types):
                retention.append(
                    Retention(
                        type=result["type"],
                        count_growth=int(result.get("count_growth", 0)),
                        bytes_growth=int(result.get("bytes_growth", 0)),
                        pid=pid,
                        root=root,
                        chain=chain,
                        graph=graph,
                        pattern=finding.pattern,
                        fix=finding.fix,
                        bound=finding.bound,
                        kept_at=_kept_at(run, pid, result),
                    )
                )
            chains.append(
                {
                    "pid": pid,
                    "role": run.roles.get(pid, "main"),
                    "type": result["type"],
                    "status": result["status"],
                    "root_kind": result["root"]["kind"],
                    "root": root,
                    "chain": list(chain),
                    "text": chain_text(chain),
                    "pattern": finding.pattern,
                    "fix": finding.fix,
                    "bound": finding.bound,
                    "graph": graph,
                    "dot": str(rendered.dot.relative_to(ctx.run_dir)) if rendered else None,
                    "graph_problem": rendered.problem if rendered else "no graph source",
                    "taken_at": round(float(result.get("taken_at", run.started_at)) - run.started_at, 2),
                    "taken_when": result.get("reason", ""),
                    "samples": result.get("samples", 0),
                    "count_growth": result.get("count_growth", 0),
                    "bytes_growth": result.get("bytes_growth", 0),
                    # count: more objects; container: a container holds more; size: one object got bigger
                    "growth": result.get("mode") if result.get("mode") in ("container", "size") else "count",
                }
            )
        return retention, chains


def _kept_at(run: TargetRun, pid: int, result: dict[str, Any]) -> tuple[tuple[str, int, str, str], ...]:
    """The lines of the user's module that add to the module global at the root (analysis/keepers.py)."""
    root = result.get("root") or {}
    file, name = root.get("file"), root.get("name")
    if root.get("kind") != "module-global" or not isinstance(file, str) or not isinstance(name, str):
        return ()
    if not rules_from_hello(run.hello(pid) or run.hello()).is_user(file):
        return ()
    return tuple((file, line, function_at(file, line), line_text(file, line)) for line in lines_adding_to(file, name))


def _not_grown(names: tuple[str, ...], series: dict[int, list[Checkpoint]], growth: dict[int, list[TypeGrowth]]) -> str:
    """In words: the types asked for did not grow (their counts at the first and last checkpoint), and
    which types did grow instead."""
    parts = []
    for name in names:
        seen = []
        for points in series.values():
            keys = {k for cp in points for k in cp.counts if type_matches(name, k)}
            for key in sorted(keys):
                last = next((cp.counts[key][0] for cp in reversed(points) if key in cp.counts), 0)
                seen.append(f"{last:,} at the last count")
        counts = f" ({'; '.join(seen)})" if seen else ""
        parts.append(
            f"{name} did not keep growing once the program's imports were done{counts}, so no object of it was followed"
        )
    grew = [f"{g.type} (+{g.count_growth:,})" for rows in growth.values() for g in rows[:6] if g.count_growth > 0]
    parts.append("types that grew: " + ", ".join(grew) if grew else "no type grew")
    return "; ".join(parts)


TAIL_SHARE = 1 / 3  # the last part of the checkpoints, by time, in which a type still growing grows ...
TAIL_GROWTH = 0.1  # ... by at least this share of its whole growth


def _still_growing(points: list[Checkpoint], key: str) -> bool:
    """The type's count rose over the last third of the run by a tenth of its growth at least (True when
    there are too few checkpoints to tell), and is still up at the end. Read at the higher of the last two
    checkpoints: the last may come after the target's code returned, when what its functions held is gone;
    and not at the tail's highest, since counts sampled with a stride rise and fall by chance (an index of
    a million tuples, counted one in 256, moves by hundreds between checkpoints without growing)."""
    counts = [(cp.t, cp.counts[key][0]) for cp in points if key in cp.counts]
    if len(counts) < 4:
        return True
    first = counts[0][1]
    cut = counts[-1][0] - TAIL_SHARE * (counts[-1][0] - counts[0][0])
    # from the last checkpoint at or before the cut: checkpoints spaced out by a busy machine must not leave
    # only the final one or two in the window
    at_cut = [n for t, n in counts if t <= cut][-1]
    end = max(n for _, n in counts[-2:])
    grown = max(n for _, n in counts) - first
    return grown <= 0 or end - at_cut >= TAIL_GROWTH * grown


def _load_counts(path: Path) -> tuple[dict[str, tuple[int, int]], frozenset[str]] | None:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):  # a checkpoint cut short when the target was killed
        return None
    counts = {str(k): (int(v[0]), int(v[1])) for k, v in raw.get("types", {}).items()}
    return counts, frozenset(str(k) for k in raw.get("user_types", []))


def _growth_row(pid: int, g: TypeGrowth) -> dict[str, Any]:
    return {
        "pid": pid,
        "type": g.type,
        "first": g.first,
        "peak": g.peak,
        "last": g.last,
        "count_growth": g.count_growth,
        "bytes_growth": g.bytes_growth,
        "grew_in": round(g.grew_in, 3),
        "freed_at_end": g.freed_at_end,
    }
