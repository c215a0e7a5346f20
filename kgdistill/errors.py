"""One exception family for user-facing failures.

The CLI turns any :class:`KGDistillError` into a single line on stderr and a
non-zero exit; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations


class KGDistillError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code = 2

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None):
        self.source = source
        self.line = line
        where = ""
        if source is not None:
            where = f"{source}:{line}: " if line is not None else f"{source}: "
        super().__init__(f"{where}{message}")


class ConfigError(KGDistillError):
    """A configuration key is unknown, missing or has a wrong value."""


class GraphFormatError(KGDistillError):
    """A graph file cannot be read as the format it claims to be."""


class DataError(KGDistillError):
    """Paired data is missing, malformed or inconsistent with the graph."""


class RunDirError(KGDistillError):
    """A run directory is missing, incomplete or from another configuration."""


class StoreError(KGDistillError):
    """The alignment store cannot be reached or rejected an operation."""


class TrainingError(KGDistillError):
    """Training diverged (a non-finite loss) or cannot proceed."""


class TrainingInterrupted(KGDistillError):
    """Training stopped on request (SIGTERM, Ctrl-C) after writing a checkpoint to resume from."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum  # what a shell reports for a process stopped by that signal


class ArtefactError(KGDistillError):
    """An exported model folder is incomplete, altered since export, or cannot be read."""
