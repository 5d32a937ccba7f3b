"""What export and import move between a backend and the export document (``_export``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._entries import Entry
from .models import AgentRecord, RunRecord, SessionRecord


@dataclass(frozen=True, slots=True)
class MessageRow:
    """A stored message with the ids ``ChatMsg`` leaves out (used by export/import)."""

    agent_id: str
    session_id: str
    run_id: str | None
    seq: int
    role: str
    content: str | None
    created_at: datetime
    metadata: dict[str, Any] | None = None
    token_count: int | None = None
    idempotency_key: str | None = None


@dataclass(slots=True)
class Dump:
    """Everything export/import moves; ``states`` maps run id to state JSON text."""

    agents: list[AgentRecord]
    sessions: list[SessionRecord]
    runs: list[RunRecord]
    states: dict[str, str]
    messages: list[MessageRow]
    # session id -> the highest seq it ever gave out (its next message gets one more), when
    # that is above its newest message's; missing: the newest message's seq.
    last_seqs: dict[str, int] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)


def last_seqs(dump: Dump) -> dict[str, int]:
    """Each session's highest seq ever given out (0 without messages), for import."""
    found = {s.id: 0 for s in dump.sessions}
    for m in dump.messages:
        found[m.session_id] = max(found[m.session_id], m.seq)
    for session_id, seq in dump.last_seqs.items():
        found[session_id] = max(found[session_id], seq)
    return found
