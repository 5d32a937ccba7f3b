"""Value types: the workflow state, handles, chat messages and stored records."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, Literal, NamedTuple

from ._json import check_json, check_text, to_text
from .errors import InvalidDataError

Status = Literal["pending", "running", "completed", "failed"]
STATUSES: tuple[str, ...] = ("pending", "running", "completed", "failed")


@dataclass
class WorkflowState:
    """The serialisable state of one run of a workflow."""

    workflow_name: str
    status: Status = "pending"
    current_node: str | None = None
    trace: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    input_data: dict[str, Any] = field(default_factory=dict)
    output_data: Any = None
    error: str | None = None
    invocation_id: str | None = None
    token_usage: dict[str, Any] | None = None
    duration_seconds: float | None = None
    run_id: str | None = None
    session_id: str | None = None
    agent_id: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``InvalidDataError`` naming the first field that is not valid."""
        if not isinstance(self.workflow_name, str) or not self.workflow_name:
            raise InvalidDataError("state.workflow_name", "must be a non-empty string")
        if self.status not in STATUSES:
            raise InvalidDataError("state.status", f"{self.status!r} is not one of {STATUSES}")
        for name in ("current_node", "error", "invocation_id", "run_id", "session_id", "agent_id"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise InvalidDataError(f"state.{name}", "must be a string or None")
        if not isinstance(self.trace, list) or not all(isinstance(t, str) for t in self.trace):
            raise InvalidDataError("state.trace", "must be a list of strings")
        for name in ("data", "input_data"):
            if not isinstance(getattr(self, name), dict):
                raise InvalidDataError(f"state.{name}", "must be a dict")
        if self.token_usage is not None and not isinstance(self.token_usage, dict):
            raise InvalidDataError("state.token_usage", "must be a dict or None")
        check_duration(self.duration_seconds, "state.duration_seconds")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        """Check every field and return the state as JSON text."""
        self.validate()
        as_dict = self.to_dict()
        for name, value in as_dict.items():
            check_json(value, f"state.{name}")
        return to_text(as_dict)

    @classmethod
    def from_dict(cls, raw: Any) -> WorkflowState:
        if not isinstance(raw, dict):
            raise InvalidDataError("state", "must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise InvalidDataError("state", f"unknown field(s) {unknown}")
        if "workflow_name" not in raw:
            raise InvalidDataError("state.workflow_name", "is missing")
        return cls(**raw)

    @classmethod
    def from_json(cls, text: str | bytes) -> WorkflowState:
        try:
            raw = json.loads(text)
        except (ValueError, TypeError) as exc:
            raise InvalidDataError("state", f"not valid JSON: {exc}") from None
        return cls.from_dict(raw)


@dataclass(frozen=True, slots=True)
class RunHandle:
    """What ``initialize_run`` returns: the ids a workflow needs for its writes."""

    agent_id: str
    session_id: str
    run_id: str


class ChatMsg(NamedTuple):
    """One chat message; ``seq`` orders the messages of a session. Immutable (a tuple)."""

    role: str
    content: str | None
    seq: int | None = None
    run_id: str | None = None
    created_at: datetime | None = None


def chat_msg(fields: tuple[str, str | None, int, str | None, datetime]) -> ChatMsg:
    """``ChatMsg(*fields)`` without NamedTuple's Python-level ``__new__`` (backends' hot path)."""
    return tuple.__new__(ChatMsg, fields)


@dataclass(frozen=True, slots=True)
class AgentRecord:
    id: str
    name: str
    description: str | None
    input_schema: dict[str, Any] | None
    output_schema: dict[str, Any] | None
    workflow: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """``updated_at`` is the session's last activity."""

    id: str
    agent_id: str
    external_id: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: str
    session_id: str
    agent_id: str
    input_data: dict[str, Any] | None
    output_data: dict[str, Any] | None
    context: dict[str, Any] | None
    duration_seconds: float | None
    created_at: datetime
    updated_at: datetime


def check_name(value: Any, field_name: str) -> str:
    """A required, non-empty, storable string (workflow names, roles, ids)."""
    if type(value) is str and value and value.isascii() and "\x00" not in value:
        return value  # the common case, kept cheap: it is on every call's path
    if not isinstance(value, str) or not value:
        raise InvalidDataError(field_name, "must be a non-empty string")
    check_text(value, field_name)
    return value


def check_duration(value: Any, field_name: str) -> float | None:
    """A finite, non-negative number of seconds, or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidDataError(field_name, "must be a finite number or None")
    if value < 0:
        raise InvalidDataError(field_name, "must not be negative")
    return float(value)


def check_optional_text(value: Any, field_name: str) -> str | None:
    if value is None:
        return None
    if type(value) is str and value.isascii() and "\x00" not in value:
        return value
    if not isinstance(value, str):
        raise InvalidDataError(field_name, f"must be a string or None, not {type(value).__name__}")
    check_text(value, field_name)
    return value
