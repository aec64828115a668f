"""The one exception root. The CLI turns these into a one-line message and exit code 2."""

from __future__ import annotations


class LeakbenchError(Exception):
    """Something the user can fix: bad input, a missing tool, a corrupt file."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(LeakbenchError):
    """A bad command-line value: a missing script, a malformed size, an unwritable folder."""


class PlaybookError(LeakbenchError):
    """A playbook that cannot be used; names the file and the key path."""

    def __init__(self, path: str, key: str, problem: str, *, hint: str | None = None) -> None:
        where = f"{path}: {key}" if key else path
        super().__init__(f"bad playbook {where}: {problem}", hint=hint)
        self.path = path
        self.key = key
        self.problem = problem


class TargetError(LeakbenchError):
    """The target could not be started at all (a crash once running is evidence, not an error)."""

    def __init__(self, message: str, *, exit_code: int | None = None, stderr_tail: str = "") -> None:
        super().__init__(message)
        self.target_exit_code = exit_code
        self.stderr_tail = stderr_tail


class TrackerError(LeakbenchError):
    """The native tracker failed, or a capture file is corrupt or foreign."""

    def __init__(self, message: str, *, code: str = "tracker", offset: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.offset = offset


class RunDirError(LeakbenchError):
    """A run directory that is missing, foreign or incomplete."""
