"""Playbook validation: every refusal names the file, the key path and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from leakbench import playbook
from leakbench.errors import PlaybookError


def test_builtin_playbooks_load() -> None:
    for name in playbook.builtin_names():
        book = playbook.load(name)
        assert book.stages, name


def _bad(tmp_path: Path, text: str) -> PlaybookError:
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(PlaybookError) as info:
        playbook.load(str(path))
    assert str(path) in str(info.value)
    return info.value


def test_unknown_kind_names_the_key_and_the_known_kinds(tmp_path: Path) -> None:
    err = _bad(tmp_path, '[[stages]]\nkind = "rss"\n[[stages]]\nkind = "heapdump"\n')
    assert err.key == "stages[1].kind"
    assert "tracemalloc" in str(err)


def test_wrong_type_names_the_parameter(tmp_path: Path) -> None:
    err = _bad(tmp_path, '[[stages]]\nkind = "tracemalloc"\ninterval = "fast"\n')
    assert err.key == "stages[0].interval"
    assert "expected float" in str(err)


def test_unknown_parameter_lists_the_allowed_ones(tmp_path: Path) -> None:
    err = _bad(tmp_path, '[[stages]]\nkind = "rss"\nintervall = 0.2\n')
    assert err.key == "stages[0].intervall"
    assert "interval" in str(err.hint)


def test_not_toml(tmp_path: Path) -> None:
    assert "not valid TOML" in str(_bad(tmp_path, "stages = [\n"))


def test_unknown_builtin_lists_the_builtins() -> None:
    with pytest.raises(PlaybookError) as info:
        playbook.load("nosuch")
    assert "quick" in str(info.value)


def test_int_is_accepted_for_a_float(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text('[[stages]]\nkind = "tracemalloc"\ninterval = 2\n')
    assert playbook.load(str(path)).stages[0].params.interval == 2.0
