"""Runs the accuracy corpus through `leakbench investigate` (the default playbook) and scores the verdicts.

    python -m accuracy.runner                      # every program, 3 runs each
    python -m accuracy.runner --runs 1 lru deque   # programs whose name contains "lru" or "deque"
    python -m accuracy.runner --list

Each run's evidence.json is read for the verdict, the top three suspects and the first retention root.
Printed: a confusion matrix (expected leak / no-leak × got leak / no-leak / inconclusive / other), the
top-3 line hit rate and the root hit rate over the leak runs, and how many programs got the same verdict
in every run. Exit status 1 when the bar is not met: every no-leak program `no-leak` (or `inconclusive`
where it allows it) in every run; every leak `leak` with its line in the top 3 and its root named, in
every run. `--results FILE` merges the outcome into FILE's table (accuracy/RESULTS.md) and its JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from accuracy.corpus import CACHE, HERE, Program, all_programs, select
from accuracy.venvs import ensure_venv

REPO = HERE.parent
TIMEOUT = 900.0


@dataclass
class Run:
    verdict: str  # leak | no-leak | inconclusive | oom | error
    pattern: str = ""
    confidence: float = 0.0
    suspects: list[str] = field(default_factory=list)  # "file.py:12 function" of the top 3
    root: str = ""
    line_hit: bool = False
    root_hit: bool = False
    seconds: float = 0.0
    summary: str = ""
    out: str = ""


@dataclass
class Outcome:
    program: Program
    runs: list[Run]

    @property
    def verdicts(self) -> list[str]:
        return [r.verdict for r in self.runs]

    @property
    def stable(self) -> bool:
        return len(set(self.verdicts)) == 1

    def run_ok(self, run: Run) -> bool:
        p = self.program
        if p.expected == "no-leak":
            return run.verdict == "no-leak" or (p.allow_inconclusive and run.verdict == "inconclusive")
        return run.verdict == "leak" and run.line_hit and (run.root_hit or not p.roots)

    @property
    def passed(self) -> bool:
        return bool(self.runs) and all(self.run_ok(r) for r in self.runs)


def _installed(requirement: str) -> bool:
    name, _, version = requirement.partition("==")
    try:
        found = metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return not version or found == version


def interpreter_for(program: Program, python: str | None) -> str | None:
    """The --python for a program: its own venv when it needs packages this environment lacks."""
    if program.requires and (python or program.group == "package" or not all(map(_installed, program.requires))):
        return str(ensure_venv(program.requires, python))
    return python


def _suspect_label(s: dict[str, object]) -> str:
    return f"{Path(str(s.get('file', '?'))).name}:{s.get('line', '?')} {s.get('function', '')}".strip()


def score(program: Program, evidence: dict[str, object]) -> Run:
    verdict = evidence.get("verdict") or {}
    assert isinstance(verdict, dict)
    suspects = evidence.get("suspects") or []
    retention = evidence.get("retention") or []
    assert isinstance(suspects, list) and isinstance(retention, list)
    top = suspects[:3]
    expected_lines = {(str(path), line) for path, line in program.lines}
    line_hit = False
    for s in top:
        file, line = str(s.get("file", "")), s.get("line")
        resolved = str(Path(file).resolve()) if file else ""
        if (resolved, line) in expected_lines or any(f"{file}:{line}".endswith(pl) for pl in program.package_lines):
            line_hit = True
    root = str(retention[0].get("root", "")) if retention else ""
    return Run(
        verdict=str(verdict.get("kind", "error")),
        pattern=str(verdict.get("pattern", "")),
        confidence=float(verdict.get("confidence", 0.0) or 0.0),
        suspects=[_suspect_label(s) for s in top],
        root=root,
        line_hit=line_hit,
        root_hit=any(words in root for words in program.roots),
        summary=str(verdict.get("summary", "")),
    )


def investigate(program: Program, out: Path, python: str | None) -> Run:
    started = time.monotonic()
    try:
        target_python = interpreter_for(program, python)
    except subprocess.CalledProcessError as exc:
        return Run("error", summary=f"venv for {' '.join(program.requires)} failed: {exc}")
    cmd = [sys.executable, "-m", "leakbench", "investigate", "--yes", "--out", str(out)]
    if target_python:
        cmd += ["--python", target_python]
    cmd += [str(program.script), *program.args]
    try:
        proc = subprocess.run(
            cmd, cwd=program.folder, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return Run("error", seconds=time.monotonic() - started, summary=f"timed out after {TIMEOUT:.0f} s")
    seconds = time.monotonic() - started
    evidence_file = out / "evidence.json"
    if proc.returncode != 0 or not evidence_file.exists():
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return Run("error", seconds=seconds, summary=f"exit {proc.returncode}: {tail}", out=str(out))
    run = score(program, json.loads(evidence_file.read_text()))
    run.seconds = seconds
    run.out = str(out)
    return run


def run_corpus(
    programs: list[Program],
    runs: int,
    jobs: int,
    python: str | None,
    out_root: Path,
    progress: bool = True,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Every run of every program; `on_done` gets each program's outcome as soon as its runs are in."""
    outcomes = {p.name: Outcome(p, []) for p in programs}
    work = [(p, i) for p in programs for i in range(runs)]

    def one(item: tuple[Program, int]) -> tuple[str, Run]:
        program, index = item
        out = out_root / program.name.replace("/", "__") / f"run-{index + 1}"
        run = investigate(program, out, python)
        if progress:
            mark = "ok " if Outcome(program, [run]).passed else "BAD"
            print(
                f"{mark} {program.name} run {index + 1}: {run.verdict} ({run.pattern}) "
                f"line={'y' if run.line_hit else 'n'} root={'y' if run.root_hit else 'n'} "
                f"{run.seconds:.0f}s  {run.root[:60]}",
                flush=True,
            )
        return program.name, run

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for name, run in pool.map(one, work):
            outcomes[name].runs.append(run)
            if on_done and len(outcomes[name].runs) == runs:
                on_done(outcomes[name])
    return list(outcomes.values())


COLUMNS = ("leak", "no-leak", "inconclusive", "other")


def summary_lines(outcomes: list[Outcome]) -> list[str]:
    matrix: dict[str, Counter[str]] = {"leak": Counter(), "no-leak": Counter()}
    for o in outcomes:
        for r in o.runs:
            matrix[o.program.expected][r.verdict if r.verdict in COLUMNS[:3] else "other"] += 1
    leak_runs = [r for o in outcomes if o.program.expected == "leak" for r in o.runs]
    rooted = [r for o in outcomes if o.program.expected == "leak" and o.program.roots for r in o.runs]
    lines = ["expected \\ got  " + "".join(f"{c:>14}" for c in COLUMNS)]
    for expected in ("leak", "no-leak"):
        lines.append(f"{expected:<16}" + "".join(f"{matrix[expected][c]:>14}" for c in COLUMNS))

    def rate(hits: int, total: int) -> str:
        return f"{hits}/{total} ({100 * hits / total:.0f}%)" if total else "n/a"

    lines.append(f"top-3 line hit rate (leak runs): {rate(sum(r.line_hit for r in leak_runs), len(leak_runs))}")
    lines.append(f"root hit rate (leak runs with a root): {rate(sum(r.root_hit for r in rooted), len(rooted))}")
    multi = [o for o in outcomes if len(o.runs) > 1]
    lines.append(f"same verdict in every run: {rate(sum(o.stable for o in multi), len(multi))} programs")
    lines.append(f"programs meeting the bar: {rate(sum(o.passed for o in outcomes), len(outcomes))}")
    return lines


# RESULTS.md: the table between these markers is rewritten from results.json; the rest is prose.
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_table(records: dict[str, dict[str, object]]) -> str:
    rows = [
        "| program | expected | got (per run) | bar | top suspects (last run) | root (last run) | when |",
        "|---|---|---|---|---|---|---|",
    ]
    order = sorted(records, key=lambda n: (n.startswith("pkg/"), not n.startswith("leak/"), n))
    for name in order:
        rec = records[name]
        runs = rec["runs"]
        assert isinstance(runs, list)
        got = ", ".join(
            f"{r['verdict']}"
            + (f" {r['pattern']}" if r["pattern"] else "")
            + (
                ""
                if rec["expected"] == "no-leak"
                else f" [line {'✓' if r['line_hit'] else '✗'}"
                f" root {'✓' if r['root_hit'] else ('–' if not rec['roots'] else '✗')}]"
            )
            for r in runs
        )
        last = runs[-1] if runs else {}
        rows.append(
            "| "
            + " | ".join(
                _cell(str(x))
                for x in (
                    name,
                    rec["expected"],
                    got,
                    "pass" if rec["passed"] else "**FAIL**",
                    "; ".join(last.get("suspects", [])) or "–",
                    last.get("root", "") or "–",
                    rec["when"],
                )
            )
            + " |"
        )
    return "\n".join(rows)


def merge_results(path: Path, outcomes: list[Outcome], when: str) -> None:
    records = {
        o.program.name: {
            "expected": o.program.expected,
            "roots": list(o.program.roots),
            "passed": o.passed,
            "when": when,
            "runs": [{k: v for k, v in asdict(r).items() if k != "out"} for r in o.runs],
        }
        for o in outcomes
    }
    merge_records(path, records)


def merge_records(path: Path, new: dict[str, dict[str, object]]) -> None:
    """Add programs' records (each replacing the program's older one) to `path`'s .json, and write the table
    between the markers of `path` from all of them: a pass kept in another results file is merged the same way."""
    data_file = path.with_suffix(".json")
    records: dict[str, dict[str, object]] = json.loads(data_file.read_text()) if data_file.exists() else {}
    records.update(new)
    data_file.write_text(json.dumps(records, indent=1, sort_keys=True) + "\n")
    all_outcomes = []  # the summary over everything recorded, not only this run
    by_name = {p.name: p for p in all_programs()}
    for name, rec in records.items():
        if name in by_name:
            runs = [Run(**r) for r in rec["runs"]]  # type: ignore[arg-type, attr-defined]
            all_outcomes.append(Outcome(by_name[name], runs))
    block = "\n".join([START, "", "```", *summary_lines(all_outcomes), "```", "", render_table(records), "", END])
    text = path.read_text() if path.exists() else f"# Accuracy corpus results\n\n{START}\n{END}\n"
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    path.write_text(head + block + tail)


def _commit() -> str:
    """The checkout the runs measured, `-dirty` when it had uncommitted changes."""
    cmd = ["git", "describe", "--always", "--dirty", "--exclude", "*"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    return out.stdout.strip() or "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m accuracy.runner", description=__doc__.split("\n\n")[0])
    parser.add_argument("patterns", nargs="*", help="only programs whose name contains one of these")
    parser.add_argument("--runs", type=int, default=3, help="runs of each program (default 3)")
    parser.add_argument("--jobs", type=int, default=1, help="investigations at once (default 1)")
    parser.add_argument("--python", help="the targets' interpreter (package venvs are made from it)")
    parser.add_argument("--synthetic", action="store_true", help="only the synthetic programs")
    parser.add_argument("--packages", action="store_true", help="only the package pairs")
    parser.add_argument("--out", type=Path, help="where the runs go (default: accuracy/.cache/runs/<time>)")
    parser.add_argument("--results", type=Path, help="merge the outcome into this markdown file (and its .json)")
    parser.add_argument("--list", action="store_true", help="list the programs and what they expect")
    parser.add_argument("--merge", type=Path, help="merge the records of another results .json into --results")
    args = parser.parse_args(argv)
    if args.merge:
        if not args.results:
            parser.error("--merge needs --results (the file to merge into)")
        merge_records(args.results, json.loads(args.merge.read_text()))
        print(f"merged {args.merge} into {args.results}")
        return 0
    programs = all_programs()
    if args.synthetic:
        programs = [p for p in programs if p.group == "synthetic"]
    if args.packages:
        programs = [p for p in programs if p.group == "package"]
    programs = select(programs, args.patterns)
    if args.list:
        for p in programs:
            lines = ", ".join(f"{path.name}:{n}" for path, n in p.lines) or "–"
            print(f"{p.name:<45} {p.expected:<8} line {lines:<28} root {' | '.join(p.roots) or '–'}")
        return 0
    out_root = args.out or CACHE / "runs" / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    when = f"{datetime.now(UTC):%m-%d %H:%M} @{_commit()}"  # when the pass started, on which code
    print(f"accuracy: {len(programs)} programs × {args.runs} runs, {args.jobs} at a time; runs in {out_root}")
    record = None
    if args.results:
        results: Path = args.results

        def record(outcome: Outcome) -> None:  # each program's outcome is kept as soon as it is known
            merge_results(results, [outcome], when)

    outcomes = run_corpus(programs, args.runs, args.jobs, args.python, out_root, on_done=record)
    print()
    for line in summary_lines(outcomes):
        print(line)
    failed = [o for o in outcomes if not o.passed]
    for o in failed:
        print(f"  below the bar: {o.program.name} (expected {o.program.expected}): {', '.join(o.verdicts)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
