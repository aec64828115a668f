"""The torture suite: programs that stress the agent, run plainly and under every built-in playbook.

Each program runs in a fresh folder, once with `python prog.py ARGS` and then under
`leakbench investigate --playbook P`; what it does must not change: its exit code, its stdout (byte for
byte: leakbench's own output goes to stderr) and the files it writes. A playbook may run the target more
than once (native, line_profile): each of those runs must match the plain one too; a run that leakbench
stopped on purpose (the line profile's call budget) must have printed a prefix of it and be marked
stopped by leakbench.

    python -m tests.harmless.harness [--runs N] [--programs a,b] [--playbooks quick,full]

prints one line per program and playbook and, at the end, runs × playbooks and the number of differences.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS_DIR = Path(__file__).resolve().parent / "programs"
PLAYBOOKS = tuple(sorted(p.stem for p in (ROOT / "playbooks").glob("*.toml")))
LEAKBENCH = Path(sys.executable).with_name("leakbench")
TIMEOUT_S = 900


@dataclass(frozen=True)
class Program:
    script: str
    args: tuple[str, ...] = ()
    stdin: str | None = None  # a file (relative to the repository) fed to its standard input
    slow: bool = False  # left out of the fast subset


PROGRAMS = (
    Program("tuples.py", ("3",)),
    Program("threads32.py"),
    Program("asyncio_tasks.py"),
    Program("signals.py"),
    Program("hostile.py"),
    Program("weakrefs.py"),
    Program("recursion.py"),
    Program("daemon_threads.py"),
    Program("os_exit.py"),
    Program("atexit_handlers.py"),
    Program("stdin_reader.py", stdin="README.md"),
    Program("big_stdout.py"),
    Program("subprocesses.py"),
    Program("forker.py"),
    Program("c_extension.py"),
    Program("big_heap.py", slow=True),
)


@dataclass
class Outcome:
    code: int | None  # the exit code (negative: killed by that signal)
    stdout: bytes
    files: dict[str, str] = field(default_factory=dict)  # name -> sha256 of what the program wrote
    seconds: float = 0.0


def _files(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _run(command: list[str], program: Program, cwd: Path, stdout: Path, stderr: Path) -> tuple[int, float]:
    stdin = (ROOT / program.stdin).open("rb") if program.stdin else subprocess.DEVNULL
    began = time.monotonic()
    try:
        with stdout.open("wb") as out, stderr.open("wb") as err:
            done = subprocess.run(command, cwd=cwd, stdin=stdin, stdout=out, stderr=err, timeout=TIMEOUT_S)
    finally:
        if program.stdin:
            stdin.close()  # type: ignore[union-attr]
    return done.returncode, time.monotonic() - began


def run_plain(program: Program, scratch: Path) -> Outcome:
    cwd = scratch / "plain"
    cwd.mkdir(parents=True)
    out, err = scratch / "plain.out", scratch / "plain.err"
    code, seconds = _run([sys.executable, str(PROGRAMS_DIR / program.script), *program.args], program, cwd, out, err)
    return Outcome(code, out.read_bytes(), _files(cwd), seconds)


def run_under(program: Program, playbook: str, scratch: Path) -> tuple[Outcome, int, list[dict]]:
    """The program under one playbook: its outcome, leakbench's exit code and each target run's ending."""
    cwd = scratch / f"under-{playbook}"
    cwd.mkdir(parents=True)
    run_dir = scratch / f"run-{playbook}"
    out, err = scratch / f"{playbook}.out", scratch / f"{playbook}.err"
    command = [str(LEAKBENCH), "investigate", "--yes", "--playbook", playbook, "--out", str(run_dir)]
    command += [str(PROGRAMS_DIR / program.script), *program.args]
    code, seconds = _run(command, program, cwd, out, err)
    endings = []
    try:
        state = json.loads((run_dir / "state.json").read_text())
        for name in state.get("runs", []):
            meta = json.loads((run_dir / "runs" / name / "run.json").read_text())
            endings.append(meta["exit"])
        # the line profile's run of its own comes last (its stage is last in every built-in playbook)
        own = run_dir / "stages" / "line_profile" / "run" / "run.json"
        if own.is_file():
            ending = json.loads(own.read_text())["exit"]
            # it may end the target itself once it has profiled enough calls or spent its budget
            for path in own.parent.glob("channel/*.jsonl"):
                for line in path.read_text().splitlines():
                    event = json.loads(line)
                    if event.get("event") == "line-profile" and event.get("reason") in ("calls", "budget"):
                        ending = {**ending, "stopped_by": f"line profile: {event['reason']}"}
            endings.append(ending)
    except (OSError, ValueError, KeyError):
        pass
    return Outcome(None, out.read_bytes(), _files(cwd), seconds), code, endings


def _exit_code(ending: dict) -> int | None:
    if ending.get("signal"):
        return -int(ending["signal"])
    return ending.get("code")


def differences(plain: Outcome, under: Outcome, leakbench_code: int, endings: list[dict]) -> list[str]:
    """What differs between the plain run and the runs under leakbench, in words (empty: none)."""
    found = []
    if leakbench_code != 0:
        found.append(f"leakbench exited with {leakbench_code}")
    if not endings:
        return [*found, "no target run recorded"]
    rest = under.stdout
    for i, ending in enumerate(endings, 1):
        stopped = ending.get("stopped_by")
        if stopped:
            # stopped on purpose: a prefix of the plain output, then the complete runs after it
            complete_after = sum(1 for e in endings[i:] if not e.get("stopped_by"))
            cut = len(rest) - complete_after * len(plain.stdout)
            if cut < 0 or not plain.stdout.startswith(rest[:cut]):
                found.append(f"run {i} (stopped by leakbench: {stopped}): stdout is not a prefix of the plain one")
                return found
            rest = rest[cut:]
            continue
        if _exit_code(ending) != plain.code:
            found.append(f"run {i}: exit {_exit_code(ending)} ({ending.get('status')}), plain: {plain.code}")
        if not rest.startswith(plain.stdout):
            found.append(f"run {i}: stdout differs ({_first_difference(plain.stdout, rest)})")
            return found
        rest = rest[len(plain.stdout) :]
    if rest:
        found.append(f"{len(rest)} more bytes on stdout than the runs printed plainly")
    if under.files != plain.files:
        found.append(f"files differ: plain {sorted(plain.files)}, under leakbench {sorted(under.files)}")
    return found


def _first_difference(expected: bytes, got: bytes) -> str:
    n = next((i for i, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b), min(len(expected), len(got)))
    return f"at byte {n}: expected {expected[n : n + 40]!r}, got {got[n : n + 40]!r}"


def check(program: Program, playbook: str, keep: bool = False) -> tuple[list[str], float]:
    """One plain run and one run under `playbook`; the differences and the time under leakbench."""
    scratch = Path(tempfile.mkdtemp(prefix=f"leakbench-harmless-{Path(program.script).stem}-"))
    try:
        plain = run_plain(program, scratch)
        under, code, endings = run_under(program, playbook, scratch)
        found = differences(plain, under, code, endings)
        if found and keep:
            found.append(f"kept in {scratch}")
        return found, under.seconds
    finally:
        if not (keep and found):
            shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--programs", default="", help="comma-separated script names (default: all)")
    parser.add_argument("--playbooks", default=",".join(PLAYBOOKS))
    args = parser.parse_args(argv)
    names = {n if n.endswith(".py") else n + ".py" for n in args.programs.split(",") if n}
    programs = [p for p in PROGRAMS if not names or p.script in names]
    playbooks = [p for p in args.playbooks.split(",") if p]
    total = 0
    bad = 0
    for program in programs:
        for playbook in playbooks:
            worst: list[str] = []
            failed = 0
            seconds = 0.0
            for _ in range(args.runs):
                found, took = check(program, playbook, keep=True)
                seconds += took
                total += 1
                if found:
                    failed += 1
                    worst = worst or found
            bad += failed
            status = "ok" if not failed else f"{failed} of {args.runs} differ: {'; '.join(worst)}"
            print(f"{program.script:22} {playbook:8} {args.runs} runs, {seconds / args.runs:5.1f} s each: {status}")
            sys.stdout.flush()
    print(f"{len(programs)} programs x {len(playbooks)} playbooks x {args.runs} runs = {total} runs; {bad} differences")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
