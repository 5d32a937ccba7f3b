"""runstore: async storage for agent workflows, from the browser (Pyodide) to PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._entries import Entry, EntryHit, EntryPatch, NewEntry
from ._lifecycle import ErasureReport, PruneReport, StoreStats
from .base import DataStorage
from .errors import (
    InvalidDataError,
    NotFoundError,
    StorageClosedError,
    StorageError,
    StorageUnavailableError,
)
from .memory import InMemoryDataStorage
from .models import (
    AgentRecord,
    ChatMsg,
    RunHandle,
    RunRecord,
    SearchHit,
    SessionRecord,
    WorkflowState,
)

if TYPE_CHECKING:
    from .postgres import PostgresDataStorage
    from .sqlite import SqliteDataStorage

__version__ = "0.1.0"

__all__ = [
    "AgentRecord",
    "ChatMsg",
    "DataStorage",
    "Entry",
    "EntryHit",
    "EntryPatch",
    "ErasureReport",
    "InMemoryDataStorage",
    "InvalidDataError",
    "NewEntry",
    "NotFoundError",
    "PostgresDataStorage",
    "PruneReport",
    "RunHandle",
    "RunRecord",
    "SearchHit",
    "SessionRecord",
    "SqliteDataStorage",
    "StorageClosedError",
    "StorageError",
    "StorageUnavailableError",
    "StoreStats",
    "WorkflowState",
]

_LAZY = {"SqliteDataStorage": ".sqlite", "PostgresDataStorage": ".postgres"}


def __getattr__(name: str) -> Any:
    """Backends with optional drivers are imported on first use."""
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'runstore' has no attribute {name!r}")
