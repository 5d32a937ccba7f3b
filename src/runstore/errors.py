"""The errors every backend raises, and ``quote`` for caller text inside their messages."""

from __future__ import annotations

_QUOTED_CHARS = 40

# The thing a field names, for "no <thing> <id>" messages.
_KINDS = {"agent_id": "agent", "workflow_name": "agent", "session_id": "session", "run_id": "run"}


def quote(text: str) -> str:
    """``repr()`` of at most the first 40 characters of ``text``, plus "…" when cut:
    every message that repeats caller text uses it."""
    if len(text) <= _QUOTED_CHARS:
        return repr(text)
    return repr(text[:_QUOTED_CHARS]) + "…"


class StorageError(Exception):
    """Base class of every runstore error."""


class NotFoundError(StorageError, LookupError):
    """A write referenced an agent, session or run that does not exist; ``field`` names the
    argument and ``id`` is its value (e.g. "session_id: no session 'abc'")."""

    def __init__(self, field: str, id: str) -> None:
        super().__init__(f"{field}: no {_KINDS.get(field, field)} {quote(id)}")
        self.field = field
        self.id = id


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
