"""The errors every backend raises."""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every runstore error."""


class NotFoundError(StorageError, LookupError):
    """A write referenced an agent, session or run that does not exist."""


class InvalidDataError(StorageError, ValueError):
    """An argument was rejected; ``field`` names it. The store is unchanged."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class StorageUnavailableError(StorageError):
    """The server cannot be reached, or the connection broke during the call: retry later
    (with backoff). A write that failed this way may or may not have been applied."""


class StorageClosedError(StorageError):
    """The store was used after ``close()``."""
