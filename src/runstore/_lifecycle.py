"""A user's data over its life (docs/contract.md, "Erasure", "Retention", "Accounting").

``LifecycleStore`` holds the public methods, their checks and the rules; a backend supplies
only its statements through the hooks below (``_erase``, ``_count_stats``, ``_prune``).

The rules, once:
- **Erasure** of an external id removes every session with that ``external_id`` (under every
  agent, forks included) with its runs, states and messages, and every entry it ``owner``s,
  in one atomic step. Nothing else changes (agents stay). Like every count, the report's
  ``entries`` counts only entries live at the time (an expired one goes uncounted).
- **Retention**: ``idle_before`` removes the sessions whose last activity (``updated_at``) is
  before it, as erasure removes a session; ``keep_last=N`` removes every message of a session
  but its newest N (``last_seq`` is kept, so a seq is never given out twice); expired entries
  go (``expired_entries``). SQL backends remove at most ``PRUNE_BATCH`` rows per transaction.
- **Accounting** counts what a read could return: sessions, runs, messages, live entries, and
  ``bytes``: the UTF-8 size of message contents plus entries' data.
"""

from __future__ import annotations

import types
from abc import ABC, abstractmethod
from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from .errors import InvalidDataError
from .models import MAX_INT64, check_external_id, check_int_range, check_name, to_utc


@types.coroutine
def _other_tasks_run() -> Generator[None, None, None]:
    """``asyncio.sleep(0)`` without importing asyncio (which pulls in threading: Pyodide's
    ``import runstore`` must not): a bare yield hands the turn back to the event loop."""
    yield


PRUNE_BATCH = 1000  # rows a SQL backend removes per transaction: what a writer may wait for
SESSION_BATCH = 100  # sessions per transaction (with their runs and messages)


@dataclass(frozen=True, slots=True)
class ErasureReport:
    """What ``erase`` removed."""

    sessions: int = 0
    runs: int = 0
    messages: int = 0
    entries: int = 0


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What ``prune`` removed (``sessions``, their ``runs``, every removed ``message``)."""

    sessions: int = 0
    runs: int = 0
    messages: int = 0
    entries: int = 0


@dataclass(frozen=True, slots=True)
class StoreStats:
    """What a store holds (of one end user and/or one agent when asked)."""

    sessions: int = 0
    runs: int = 0
    messages: int = 0
    entries: int = 0
    bytes: int = 0


@dataclass(frozen=True, slots=True)
class PruneRequest:
    """A checked ``prune`` call."""

    idle_before: datetime | None
    keep_last: int | None
    expired_entries: bool
    now: datetime


def utf8_size(text: str | None) -> int:
    """The UTF-8 size of a stored text (what SQL's octet length gives)."""
    if text is None:
        return 0
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


class LifecycleStore(ABC):
    """The public lifecycle methods of ``DataStorage`` (mixed into it) and their hooks."""

    if TYPE_CHECKING:  # provided by DataStorage

        def _check_open(self) -> None: ...

        def _now(self) -> datetime: ...

    async def erase(self, external_id: str) -> ErasureReport:
        """Delete, atomically, every session with this ``external_id`` under every agent (runs,
        states, messages) and every entry it owns; returns what went."""
        self._check_open()
        if external_id is None:
            raise InvalidDataError("external_id", "must be a string")
        return await self._erase(check_external_id(external_id) or "", self._now())

    async def stats(
        self, *, external_id: str | None = None, agent_id: str | None = None
    ) -> StoreStats:
        """Counts of what the store holds (of one end user, one agent, or both), from counts
        and sums the store keeps or computes, not by reading records out. Entries belong to no
        agent: with ``agent_id`` they are counted only with ``external_id`` (the user's)."""
        self._check_open()
        external_id = check_external_id(external_id)
        if agent_id is not None:
            agent_id = check_name(agent_id, "agent_id")
        return await self._count_stats(external_id, agent_id, self._now())

    async def prune(
        self,
        *,
        idle_before: datetime | None = None,
        keep_last: int | None = None,
        expired_entries: bool = True,
    ) -> PruneReport:
        """Remove sessions idle since before ``idle_before``, all but the newest ``keep_last``
        messages of each session, and expired entries; returns what went."""
        self._check_open()
        if idle_before is not None:
            idle_before = to_utc(idle_before, "idle_before")
        if keep_last is not None:
            keep_last = check_int_range(keep_last, "keep_last", 0, MAX_INT64)
        if not isinstance(expired_entries, bool):
            raise InvalidDataError("expired_entries", "must be a bool")
        return await self._prune(PruneRequest(idle_before, keep_last, expired_entries, self._now()))

    # -- hooks a backend implements ------------------------------------------

    @abstractmethod
    async def _erase(self, external_id: str, now: datetime) -> ErasureReport: ...

    @abstractmethod
    async def _count_stats(
        self, external_id: str | None, agent_id: str | None, now: datetime
    ) -> StoreStats: ...

    @abstractmethod
    async def _prune(self, request: PruneRequest) -> PruneReport: ...


class BatchPruner(ABC):
    """What a SQL backend supplies for ``prune``: each method one short transaction that
    removes at most ``limit`` rows (``prune_in_batches`` walks the store with them)."""

    @abstractmethod
    async def _prune_idle_batch(self, idle_before: datetime, limit: int) -> tuple[int, int, int]:
        """Remove up to ``limit`` of the sessions idle since before ``idle_before`` (oldest
        first); returns (sessions, runs, messages) removed."""

    @abstractmethod
    async def _prune_cutoffs(
        self, after_id: str, keep_last: int, limit: int
    ) -> list[tuple[str, int | None]]:
        """Up to ``limit`` sessions with ids above ``after_id`` in id order, each with the seq
        of its newest message that goes (None: it has at most ``keep_last``)."""

    @abstractmethod
    async def _prune_messages_batch(self, session_id: str, through_seq: int, limit: int) -> int:
        """Remove up to ``limit`` of the oldest messages of the session with seq at most
        ``through_seq``; returns how many."""

    @abstractmethod
    async def _prune_expired_batch(self, now: datetime, limit: int) -> int:
        """Remove up to ``limit`` entries expired at ``now``; returns how many."""

    async def _prune(self, request: PruneRequest) -> PruneReport:
        """Batch after batch; between two, other tasks run (a driver that does not suspend,
        sqlite3, would otherwise hold the event loop for the whole prune)."""
        sessions = runs = messages = entries = 0
        if request.idle_before is not None:
            while True:
                await _other_tasks_run()
                batch = await self._prune_idle_batch(request.idle_before, SESSION_BATCH)
                sessions, runs, messages = (
                    sessions + batch[0],
                    runs + batch[1],
                    messages + batch[2],
                )
                if batch[0] < SESSION_BATCH:
                    break
        if request.keep_last is not None:
            after = ""
            while True:
                page = await self._prune_cutoffs(after, request.keep_last, SESSION_BATCH)
                for session_id, through_seq in page:
                    while through_seq is not None:
                        await _other_tasks_run()
                        removed = await self._prune_messages_batch(
                            session_id, through_seq, PRUNE_BATCH
                        )
                        messages += removed
                        if removed < PRUNE_BATCH:
                            break
                if len(page) < SESSION_BATCH:
                    break
                after = page[-1][0]
        if request.expired_entries:
            while True:
                await _other_tasks_run()
                removed = await self._prune_expired_batch(request.now, PRUNE_BATCH)
                entries += removed
                if removed < PRUNE_BATCH:
                    break
        return PruneReport(sessions, runs, messages, entries)
