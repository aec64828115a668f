"""The evidence.json contract (schema "leakbench.evidence/1"), checked: other tools rely on these keys.

`problems(data)` lists every way a document breaks the contract, as `key.path: what is wrong`; extra keys
are allowed, missing or mistyped required ones are not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _opt(check: Check) -> Check:
    return lambda v: v is None or check(v)


def _one_of(*values: str) -> Check:
    return lambda v: v in values


def _str(v: Any) -> bool:
    return isinstance(v, str)


def _bool(v: Any) -> bool:
    return isinstance(v, bool)


def _strs(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


VERDICT: dict[str, Check] = {
    "kind": _one_of("leak", "no-leak", "oom", "inconclusive"),
    "confidence": lambda v: _num(v) and 0 <= v <= 1,
    "growth_bytes_per_s": _num,
    "pattern": _one_of("linear", "plateau", "sawtooth", "step", "flat"),
    "summary": _str,
}
EXIT: dict[str, Check] = {
    "code": _opt(_int),
    "signal": _opt(_int),
    "status": _one_of("ok", "exception", "memory-error", "killed", "timeout"),
}
PROCESS: dict[str, Check] = {
    "pid": _int,
    "role": _one_of("main", "child"),
    "peak_rss_bytes": _int,
    "growth_bytes_per_s": _num,
}
SUSPECT: dict[str, Check] = {
    "file": _str,
    "line": _int,
    "function": _str,
    "bytes": _int,
    "count": _int,
    "pid": _int,
    "stages": _strs,
    "visible_to_tracemalloc": _bool,
    "native_frames": _strs,
}
RETENTION: dict[str, Check] = {
    "type": _str,
    "count_growth": _int,
    "bytes_growth": _int,
    "pid": _int,
    "root": _str,
    "chain": _strs,
    "graph": _opt(_str),
}
STAGE: dict[str, Check] = {"status": _one_of("ok", "skipped", "failed"), "message": _str}


def _fields(path: str, value: Any, spec: dict[str, Check], out: list[str]) -> None:
    if not isinstance(value, dict):
        out.append(f"{path}: expected an object")
        return
    for key, check in spec.items():
        if key not in value:
            out.append(f"{path}.{key}: missing")
        elif not check(value[key]):
            out.append(f"{path}.{key}: unexpected value {value[key]!r}")


def problems(data: Any) -> list[str]:
    out: list[str] = []
    if not isinstance(data, dict):
        return ["evidence: expected an object"]
    if data.get("schema") != "leakbench.evidence/1":
        out.append(f"schema: expected 'leakbench.evidence/1', got {data.get('schema')!r}")
    _fields("verdict", data.get("verdict"), VERDICT, out)
    target = data.get("target")
    if isinstance(target, dict):
        if not _strs(target.get("argv")):
            out.append("target.argv: expected a list of strings")
        _fields("target.exit", target.get("exit"), EXIT, out)
        if "memory_limit_bytes" not in target or not _opt(_int)(target["memory_limit_bytes"]):
            out.append("target.memory_limit_bytes: missing or not an integer or null")
    else:
        out.append("target: expected an object")
    lists: tuple[tuple[str, dict[str, Check]], ...] = (
        ("processes", PROCESS),
        ("suspects", SUSPECT),
        ("retention", RETENTION),
    )
    for key, spec in lists:
        items = data.get(key)
        if not isinstance(items, list):
            out.append(f"{key}: expected a list")
            continue
        for index, item in enumerate(items):
            _fields(f"{key}[{index}]", item, spec, out)
    stages = data.get("stages")
    if not isinstance(stages, dict):
        out.append("stages: expected an object")
    else:
        for name, stage in stages.items():
            _fields(f"stages.{name}", stage, STAGE, out)
    return out
