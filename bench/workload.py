"""The chat turn and what every measured store implements.

A turn is: add a user message, read the newest ``WINDOW`` messages (oldest first), add a
reply, on a session that already holds P messages. Every store gets the same two texts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SIZES = (100, 10_000, 100_000)
WINDOW = 50
USER_TEXT = "What's the weather like in Tallinn today, and should I take an umbrella?"
REPLY_TEXT = "Cloudy, 4 °C with light rain from the west this afternoon: take the umbrella."


def prefill_text(index: int) -> tuple[str, str]:
    """The role and content of the ``index``-th pre-filled message of a session."""
    if index % 2 == 0:
        return "user", f"{USER_TEXT} ({index})"
    return "assistant", f"{REPLY_TEXT} ({index})"


class Unavailable(Exception):
    """The store cannot be measured here (package missing, no server, ...); says why."""


class Subject(ABC):
    """One measured store. ``turn`` is sync or async, as the store's own API is."""

    name: str
    floor: str | None = None  # the name of the subject it is compared with
    is_async = True
    max_sessions = 5000  # how many pre-filled sessions it can hold open at once

    async def open(self, workdir: Path) -> None:  # noqa: B027 - optional hook
        """Create an empty store in ``workdir``; raise ``Unavailable`` when it cannot."""

    @abstractmethod
    async def add_sessions(self, count: int, size: int) -> list[Any]:
        """Create ``count`` sessions holding ``size`` messages each; return their handles."""

    @abstractmethod
    def turn(self, session: Any) -> Awaitable[None] | None:
        """One chat turn on ``session``."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release everything ``open`` took."""


def runstore_document(sessions: int, size: int, agent_id: str, tag: str) -> dict[str, Any]:
    """A runstore export document: one agent, ``sessions`` sessions of one run and ``size``
    messages each. Used to pre-fill runstore stores through their public ``import_data``."""
    start = datetime.now(UTC) - timedelta(days=1)
    stamp = start.isoformat()
    agent = {
        "id": agent_id,
        "name": "bench",
        "description": None,
        "input_schema": None,
        "output_schema": None,
        "workflow": None,
        "created_at": stamp,
        "updated_at": stamp,
    }
    doc_sessions: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    texts = [prefill_text(i) for i in range(size)]
    for number in range(sessions):
        session_id = f"{tag}-s{number}"
        run_id = f"{tag}-r{number}"
        doc_sessions.append(
            {
                "id": session_id,
                "agent_id": agent_id,
                "external_id": None,
                "created_at": stamp,
                "updated_at": stamp,
            }
        )
        runs.append(
            {
                "id": run_id,
                "session_id": session_id,
                "agent_id": agent_id,
                "input_data": None,
                "output_data": None,
                "context": None,
                "duration_seconds": None,
                "state": None,
                "created_at": stamp,
                "updated_at": stamp,
            }
        )
        messages.extend(
            {
                "agent_id": agent_id,
                "session_id": session_id,
                "run_id": run_id,
                "seq": seq,
                "role": role,
                "content": content,
                "created_at": stamp,
            }
            for seq, (role, content) in enumerate(texts, start=1)
        )
    return {
        "format": "runstore.export",
        "version": 1,
        "agents": [agent],
        "sessions": doc_sessions,
        "runs": runs,
        "messages": messages,
    }
