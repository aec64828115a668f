"""Checks made before anything runs: sizes and targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from leakbench.errors import UsageError
from leakbench.target import make_target, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1GB", 10**9),
        ("512MiB", 512 * 1024**2),
        ("2g", 2 * 10**9),
        ("1.5 GiB", int(1.5 * 1024**3)),
        ("4096", 4096),
    ],
)
def test_sizes(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["lots", "-1GB", "1XB", "", "GB"])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(UsageError, match="memory-limit"):
        parse_size(text)


def test_missing_script(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not found"):
        make_target(str(tmp_path / "nope.py"))


def test_binary_file_is_not_python(tmp_path: Path) -> None:
    path = tmp_path / "blob.py"
    path.write_bytes(b"\x7fELF\x00\x01\x02")
    with pytest.raises(UsageError, match="not a Python source file"):
        make_target(str(path))


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("x = 1\ndef (:\n")
    with pytest.raises(UsageError, match="line 2"):
        make_target(str(path))
