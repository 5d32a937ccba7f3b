"""Value types: the workflow state, handles, chat messages and stored records."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from ._json import MAX_DEPTH, check_json, check_text, nested_deeper_than, to_text
from .errors import InvalidDataError, quote

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
        """Raise ``InvalidDataError`` naming the first field whose type is wrong (shallow:
        ``to_json`` also checks what the containers hold)."""
        if not isinstance(self.workflow_name, str) or not self.workflow_name:
            raise InvalidDataError("state.workflow_name", "must be a non-empty string")
        if not isinstance(self.status, str) or self.status not in STATUSES:
            status = self.status
            shown = quote(status) if isinstance(status, str) else type(status).__name__
            raise InvalidDataError("state.status", f"{shown} is not one of {STATUSES}")
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

    def _checked_fields(self) -> dict[str, Any]:
        """The fields, each checked as a payload (never converted before it is checked, so
        data that contains itself or is nested too deep is refused, not a RecursionError)."""
        self.validate()
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in values.items():
            check_json(value, f"state.{name}")
        return values

    def to_dict(self) -> dict[str, Any]:
        """The state as plain JSON values (a fresh copy); refuses what ``to_json`` refuses."""
        copy: dict[str, Any] = json.loads(self.to_json())
        return copy

    def to_json(self) -> str:
        """Check every field and return the state as JSON text."""
        return to_text(self._checked_fields())

    @classmethod
    def from_dict(cls, raw: Any) -> WorkflowState:
        """A state from plain JSON values, checked like ``to_json`` checks."""
        if not isinstance(raw, dict):
            raise InvalidDataError("state", "must be a JSON object")
        if not all(type(name) is str for name in raw):
            raise InvalidDataError("state", "field names must be strings")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            shown = ", ".join(quote(name) for name in unknown[:3])
            raise InvalidDataError("state", f"unknown field(s) {shown}")
        if "workflow_name" not in raw:
            raise InvalidDataError("state.workflow_name", "is missing")
        state = cls(**raw)
        state._checked_fields()
        return state

    @classmethod
    def from_json(cls, text: str | bytes) -> WorkflowState:
        """Refuses what ``from_dict`` refuses, and ``NaN``/``Infinity`` like every payload."""
        try:
            if isinstance(text, bytes | bytearray):
                text = text.decode(json.detect_encoding(text), "surrogatepass")
            if not isinstance(text, str):
                raise TypeError(f"a state is str or bytes, not {type(text).__name__}")
            if nested_deeper_than(text, MAX_DEPTH + 1):  # + 1: the state object itself
                raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
            raw = json.loads(text)
        except (ValueError, TypeError, RecursionError) as exc:
            raise InvalidDataError("state", f"not valid JSON: {exc}") from None
        return cls.from_dict(raw)

    @classmethod
    def _from_stored(cls, text: str) -> WorkflowState:
        """A state from text ``to_json`` wrote and a store kept: checked on the way in."""
        return cls(**json.loads(text))


@dataclass(frozen=True, slots=True)
class RunHandle:
    """What ``initialize_run`` returns: the ids a workflow needs for its writes."""

    agent_id: str
    session_id: str
    run_id: str


class ChatMsg(NamedTuple):
    """One chat message; ``seq`` orders the messages of a session. A tuple: its fields
    cannot be rebound, and ``metadata`` is a fresh dict on every read."""

    role: str
    content: str | None
    seq: int | None = None
    run_id: str | None = None
    created_at: datetime | None = None
    metadata: dict[str, Any] | None = None
    token_count: int | None = None


ChatFields = tuple[str, str | None, int, str | None, datetime, dict[str, Any] | None, int | None]


def chat_msg(fields: ChatFields) -> ChatMsg:
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
    """``updated_at`` is the session's last activity. A fork (``fork_session``) names its
    parent; the parent may have been deleted since. ``metadata`` is the application's JSON
    object (a title, tags; ``{}`` when none was set): a fresh dict on every read."""

    id: str
    agent_id: str
    external_id: str | None
    created_at: datetime
    updated_at: datetime
    parent_session_id: str | None = None  # set on a fork: the session it was copied from
    forked_from_seq: int | None = None  # and the newest seq it copied (0: none)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One result of ``search_messages``: a message, its session, and how many distinct
    query words it contains."""

    message: ChatMsg
    session: SessionRecord
    score: int


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


# The limits of docs/contract.md ("Limits"), shared by every backend.
MAX_NAME_LENGTH = 256  # ids, names, roles, external ids: two fit in one PostgreSQL index entry
MAX_INT64 = 2**63 - 1  # limits and counts: what SQLite and PostgreSQL integers hold
MAX_SEQ = 2**53 - 1  # imported seq: exact as a JavaScript number, and far from MAX_INT64
# Imported times: from a day after datetime.min (which asyncpg sends as PostgreSQL's
# -infinity) to a year before datetime.max, so later activity times always fit.
EARLIEST_TIME = datetime(1, 1, 2, tzinfo=UTC)
LATEST_TIME = datetime(9999, 1, 1, tzinfo=UTC)


def check_name(value: Any, field_name: str) -> str:
    """A required, non-empty, storable string of at most ``MAX_NAME_LENGTH`` characters
    (workflow names, roles, ids)."""
    if (
        type(value) is str
        and value
        and len(value) <= MAX_NAME_LENGTH
        and value.isascii()
        and "\x00" not in value
    ):
        return value  # the common case, kept cheap: it is on every call's path
    if not isinstance(value, str) or not value:
        raise InvalidDataError(field_name, "must be a non-empty string")
    check_length(value, field_name)
    check_text(value, field_name)
    return plain_str(value)


def check_length(value: str, field_name: str, max_length: int = MAX_NAME_LENGTH) -> None:
    if len(value) > max_length:
        raise InvalidDataError(field_name, f"is longer than {max_length} characters")


def check_optional_text(value: Any, field_name: str, max_length: int | None = None) -> str | None:
    """None or a storable string (of at most ``max_length`` characters when given)."""
    if value is None:
        return None
    if (
        type(value) is str
        and value.isascii()
        and "\x00" not in value
        and (max_length is None or len(value) <= max_length)
    ):
        return value
    if not isinstance(value, str):
        raise InvalidDataError(field_name, f"must be a string or None, not {type(value).__name__}")
    if max_length is not None:
        check_length(value, field_name, max_length)
    check_text(value, field_name)
    return plain_str(value)


def plain_str(value: str) -> str:
    """The value as a plain ``str`` (a ``StrEnum`` member gives its value): every backend
    stores and returns plain strings, whatever subclass the caller passed."""
    return value if type(value) is str else str.__str__(value)


def check_external_id(value: Any, field_name: str = "external_id") -> str | None:
    return check_optional_text(value, field_name, MAX_NAME_LENGTH)


def check_int_range(value: Any, field_name: str, low: int, high: int) -> int:
    """An int (not a bool) with ``low <= value <= high``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidDataError(field_name, f"must be an int, not {type(value).__name__}")
    number = int(value)  # a plain int, also of an int subclass such as an IntEnum
    if not low <= number <= high:
        raise InvalidDataError(field_name, f"must be between {low} and {high}")
    return number


def check_duration(value: Any, field_name: str) -> float | None:
    """A finite, non-negative number of seconds (kept as a float), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidDataError(field_name, "must be a finite number or None")
    try:
        seconds = float(value)
    except OverflowError:
        raise InvalidDataError(field_name, "is too large for a float") from None
    if not math.isfinite(seconds):
        raise InvalidDataError(field_name, "must be a finite number or None")
    if seconds < 0:
        raise InvalidDataError(field_name, "must not be negative")
    return seconds + 0.0  # -0.0 becomes 0.0, as SQLite stores it


def to_utc(value: Any, field_name: str) -> datetime:
    """A timezone-aware datetime, converted to UTC."""
    if not isinstance(value, datetime):
        raise InvalidDataError(field_name, "must be a datetime")
    try:
        offset = value.utcoffset()
    except (ValueError, TypeError) as exc:  # a tzinfo that returns a bad offset
        raise InvalidDataError(field_name, f"has a bad UTC offset: {exc}") from None
    if offset is None:
        raise InvalidDataError(field_name, "must be timezone-aware")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidDataError(field_name, "is out of datetime's range in UTC") from None


def check_stored_time(value: Any, field_name: str) -> datetime:
    """A time to store (import): in UTC, from ``EARLIEST_TIME`` to before ``LATEST_TIME``."""
    moment = to_utc(value, field_name)
    if not EARLIEST_TIME <= moment < LATEST_TIME:
        raise InvalidDataError(
            field_name,
            f"must be from {EARLIEST_TIME.isoformat()} to before {LATEST_TIME.isoformat()}",
        )
    return moment
