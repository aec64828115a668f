"""Playbooks: TOML files naming an ordered list of stages and their parameters, validated on load.

Nothing unvalidated leaves this module: a bad playbook is refused with its file, the key path
(e.g. `stages[2].interval`) and what is allowed there.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from leakbench.errors import PlaybookError
from leakbench.stages.base import StageType, registry

TOP_KEYS = {
    "name": "str",
    "description": "str",
    "duration": "seconds after which a long-running target is stopped (the --duration default)",
    "memory_limit": "address-space limit such as '1GB' (the --memory-limit default)",
    "load": "a command run beside the target while it runs, e.g. one that sends it requests",
    "stages": "list of tables",
}


@dataclass(frozen=True, slots=True)
class StageSpec:
    kind: str
    params: Any  # the stage's validated Params dataclass instance


@dataclass(frozen=True, slots=True)
class Playbook:
    name: str
    description: str
    stages: tuple[StageSpec, ...]
    source: str
    text: str = ""  # the TOML itself, kept so that a run directory can be resumed with the same playbook
    duration: float | None = None
    memory_limit: str | None = None
    load: str | None = None


def builtin_names() -> list[str]:
    return sorted(p.name[: -len(".toml")] for p in files("leakbench.playbooks").iterdir() if p.name.endswith(".toml"))


def load(name_or_path: str) -> Playbook:
    """A built-in playbook by name, or a playbook file by path."""
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") or path.exists():
        if not path.is_file():
            raise PlaybookError(name_or_path, "", "no such file")
        return parse(path.read_text(encoding="utf-8"), str(path))
    resource = files("leakbench.playbooks") / f"{name_or_path}.toml"
    if not resource.is_file():
        raise PlaybookError(
            name_or_path, "", "unknown playbook", hint=f"built-in playbooks: {', '.join(builtin_names())}"
        )
    return parse(resource.read_text(encoding="utf-8"), f"playbooks/{name_or_path}.toml")


def parse(text: str, source: str) -> Playbook:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PlaybookError(source, "", f"not valid TOML ({exc})") from None
    for key in data:
        if key not in TOP_KEYS:
            raise PlaybookError(source, key, "unknown key", hint=f"allowed: {', '.join(TOP_KEYS)}")
    name = _typed(source, "name", data.get("name", Path(source).stem), str)
    description = _typed(source, "description", data.get("description", ""), str)
    duration = _typed(source, "duration", data.get("duration"), float | None)
    if duration is not None and duration <= 0:
        raise PlaybookError(source, "duration", f"must be a positive number of seconds, got {duration:g}")
    memory_limit = _typed(source, "memory_limit", data.get("memory_limit"), str | None)
    if memory_limit is not None:
        from leakbench.errors import UsageError
        from leakbench.target import parse_size

        try:
            parse_size(memory_limit)
        except UsageError:
            raise PlaybookError(source, "memory_limit", f"not a size: {memory_limit!r}", hint="e.g. '1GB'") from None
    load = _typed(source, "load", data.get("load"), str | None)
    raw_stages = data.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        raise PlaybookError(source, "stages", "missing or empty: list the stages as [[stages]] tables")
    kinds = registry()
    stages = []
    for index, raw in enumerate(raw_stages):
        where = f"stages[{index}]"
        if not isinstance(raw, dict):
            raise PlaybookError(source, where, "must be a table with a `kind`")
        kind = raw.get("kind")
        if kind not in kinds:
            raise PlaybookError(
                source,
                f"{where}.kind",
                f"unknown stage kind {kind!r}",
                hint=f"known kinds: {', '.join(sorted(kinds))}",
            )
        stages.append(StageSpec(kind, _params(source, where, kinds[kind], raw)))
    return Playbook(name, description, tuple(stages), source, text, duration, memory_limit, load)


def _params(source: str, where: str, stage: StageType, raw: dict[str, Any]) -> Any:
    fields = {f.name: f for f in dataclasses.fields(stage.params_type)}
    hints = typing.get_type_hints(stage.params_type)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "kind":
            continue
        if key not in fields:
            allowed = ", ".join(fields) or "none"
            raise PlaybookError(source, f"{where}.{key}", f"unknown parameter for stage {stage.kind!r}",
                                hint=f"allowed: {allowed}")  # fmt: skip
        values[key] = _typed(source, f"{where}.{key}", value, hints[key])
    missing = [
        n for n, f in fields.items()
        if n not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]  # fmt: skip
    if missing:
        raise PlaybookError(source, f"{where}.{missing[0]}", f"required parameter of stage {stage.kind!r} missing")
    return stage.params_type(**values)


def _typed(source: str, key: str, value: Any, expected: Any) -> Any:
    """Check one value against a field's type; int is accepted where float is expected."""
    options = typing.get_args(expected) if isinstance(expected, types.UnionType) else (expected,)
    for option in options:
        if option is type(None) and value is None:
            return value
        if option is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option in (str, bool) and isinstance(value, option):
            return value
        origin = typing.get_origin(option)
        if origin in (list, tuple) and isinstance(value, list):
            (item,) = typing.get_args(option)[:1]
            return tuple(_typed(source, f"{key}[{i}]", v, item) for i, v in enumerate(value))
    names = " or ".join(getattr(o, "__name__", str(o)) for o in options)
    raise PlaybookError(source, key, f"expected {names}, got {type(value).__name__} {value!r}")
