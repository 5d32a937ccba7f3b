"""What export and import move between a backend and the export document (``_export``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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


@dataclass(slots=True)
class Dump:
    """Everything export/import moves; ``states`` maps run id to state JSON text."""

    agents: list[AgentRecord]
    sessions: list[SessionRecord]
    runs: list[RunRecord]
    states: dict[str, str]
    messages: list[MessageRow]
