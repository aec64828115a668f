"""One venv per set of requirements (a package release, or a program's extra dependency), under
`accuracy/.cache/venvs/` (gitignored): `python -m venv` + `pip install`, with no leakbench in it, so
the target runs in its own environment through `leakbench investigate --python`.

    python -m accuracy.venvs                 # create the venvs of every package pair
    python -m accuracy.venvs --run requests  # ... and investigate each release of the matching pairs
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import subprocess
import sys
from pathlib import Path

from accuracy.corpus import CACHE, Program, package_programs, select

VENVS = CACHE / "venvs"


def interpreter_tag(python: str) -> str:
    out = subprocess.run(
        [python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def ensure_venv(requirements: tuple[str, ...], base_python: str | None = None) -> Path:
    """The interpreter of a venv holding `requirements`, made once (and again if a make was cut short)."""
    base = base_python or sys.executable
    tag = interpreter_tag(base)
    key = hashlib.sha256("\n".join([tag, *sorted(requirements)]).encode()).hexdigest()[:10]
    slug = "-".join(r.replace("==", "-").replace("/", "_") for r in requirements)[:60] or "bare"
    folder = VENVS / f"py{tag}-{slug}-{key}"
    python = folder / "bin" / "python"
    done = folder / ".ready"
    VENVS.mkdir(parents=True, exist_ok=True)
    with open(VENVS / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return python
        subprocess.run([base, "-m", "venv", "--clear", str(folder)], check=True)
        env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        if requirements:
            pip = [str(python), "-m", "pip", "install", "-q", "--only-binary=:all:", *requirements]
            result = subprocess.run(pip, capture_output=True, text=True, env=env)
            if result.returncode != 0:
                # a pure-Python release published as an sdist only
                pip.remove("--only-binary=:all:")
                subprocess.run(pip, check=True, env=env)
        done.write_text("\n".join(requirements) + "\n")
    return python


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m accuracy.venvs", description=__doc__.split("\n\n")[0])
    parser.add_argument("patterns", nargs="*", help="only the pairs whose name contains one of these")
    parser.add_argument("--python", help="base interpreter of the venvs (default: this one's)")
    parser.add_argument("--run", action="store_true", help="then run `leakbench investigate` on each release")
    parser.add_argument("--out", type=Path, default=CACHE / "pairs", help="where the runs go")
    args = parser.parse_args(argv)
    programs: list[Program] = select(package_programs(), args.patterns)
    for program in programs:
        python = ensure_venv(program.requires, args.python)
        print(f"{program.name}: {python}")
        if args.run:
            out = args.out / program.name.replace("/", "_")
            cmd = [sys.executable, "-m", "leakbench", "investigate", "--yes", "--out", str(out)]
            cmd += ["--python", str(python), str(program.script), *program.args]
            print("  $", " ".join(cmd), flush=True)
            subprocess.run(cmd, cwd=program.folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
