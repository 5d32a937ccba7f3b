"""The checked arguments the public methods of ``DataStorage`` hand to a backend's hooks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class NewRun:
    """A checked ``initialize_run`` call. Payloads are JSON text; ``new_*`` ids are used
    only for whatever has to be created. ``session_metadata`` (None: not given) comes last,
    with a default, so the browser store's older log records still read."""

    workflow_name: str
    description: str | None
    input_schema: str | None
    output_schema: str | None
    workflow: str | None
    session_id: str | None
    external_id: str | None
    input_data: str | None
    now: datetime
    new_agent_id: str
    new_session_id: str
    new_run_id: str
    session_metadata: str | None = None


@dataclass(frozen=True, slots=True)
class RunUpdate:
    """A checked ``update_run`` call: payloads are JSON text; None leaves a field as it is."""

    run_id: str
    output_data: str | None
    context: str | None
    duration_seconds: float | None
    now: datetime


@dataclass(frozen=True, slots=True)
class SessionQuery:
    """A checked ``list_sessions`` call; ``limit`` is None for no limit, never 0."""

    workflow_name: str | None
    external_id: str | None
    limit: int | None
    before: str | None

    @property
    def filters(self) -> tuple[bool, bool, bool]:
        """Whether workflow_name, external_id and before are given (SQL backends keep one
        statement per combination)."""
        given = (self.workflow_name, self.external_id, self.before)
        return (given[0] is not None, given[1] is not None, given[2] is not None)

    @property
    def given(self) -> list[str]:
        """The values of the filters that are given, in that order."""
        return [v for v in (self.workflow_name, self.external_id, self.before) if v is not None]


# A checked ``add_chat_message`` call: (agent_id, session_id, run_id, role, content, now).
# A plain tuple, the cheapest thing to build on the hot path; a backend unpacks it into
# those names.
MessageCall = tuple[str, str, str | None, str, str | None, datetime]

# A checked message of a batch to append: (role, content, run_id, metadata JSON text,
# token_count).
NewMessage = tuple[str, str | None, str | None, str | None, int | None]


class MessageOptions(NamedTuple):
    """The optional fields of a checked ``add_chat_message`` call (metadata as JSON text)."""

    metadata: str | None
    token_count: int | None
    idempotency_key: str | None


NO_OPTIONS = MessageOptions(None, None, None)


@dataclass(frozen=True, slots=True)
class NewFork:
    """A checked ``fork_session`` call; ``external_id`` None keeps the parent's."""

    session_id: str
    through_seq: int | None
    new_session_id: str
    external_id: str | None
    now: datetime


class HistoryReplacement(NamedTuple):
    """A checked ``replace_history`` (or ``add_chat_messages``) call: remove the messages
    above ``after_seq`` (None: none) and those up to ``drop_through_seq`` (None: none; never
    above ``after_seq``), append ``messages``, only if the newest seq is ``if_newest_seq``
    (None: whatever it is). ``drop_through_seq`` comes last, with a default, so the browser
    store's older log records still read."""

    session_id: str
    after_seq: int | None
    messages: list[NewMessage]
    if_newest_seq: int | None
    now: datetime
    drop_through_seq: int | None = None


class HistoryWindow(NamedTuple):
    """A checked ``get_chat_history`` call with ``max_chars`` and/or ``max_tokens`` (each
    None: no limit; ``limit`` None: no limit, never 0)."""

    session_id: str
    limit: int | None
    exclude_run_id: str | None
    max_chars: int | None
    max_tokens: int | None


@dataclass(frozen=True, slots=True)
class MessageSearch:
    """A checked ``search_messages`` call: the index terms of the candidates (never empty)
    and the filters (None: any)."""

    terms: list[str]
    external_id: str | None
    agent_id: str | None
    session_id: str | None
