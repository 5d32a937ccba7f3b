"""Rules every backend applies to what it looked up: pure functions, one place each.

A backend looks up what a rule needs (in its dicts, or with SQL) and calls the rule, which
raises the contract's error or returns. PostgreSQL runs ``continued_session``'s rule inside
its ``initialize_run`` function as well (same order, same errors; the contract suite checks).
"""

from __future__ import annotations

import json
from collections.abc import Container

from ._calls import NewRun
from ._dump import Dump
from ._json import to_text
from .errors import InvalidDataError, NotFoundError, quote
from .models import ChatMsg


def refuse_message(
    agent_id: str,
    session_id: str,
    run_id: str | None,
    session_agent: str | None,
    run_session: str | None,
) -> None:
    """Raise why ``add_chat_message`` cannot append, in the contract's order, given the
    session's agent (None: no such session) and the run's session (None: no such run).
    Returns when the message may be appended."""
    if session_agent is None:
        raise NotFoundError("session_id", session_id)
    if session_agent != agent_id:
        raise InvalidDataError("agent_id", "is not the agent of that session")
    if run_id is not None:
        if run_session is None:
            raise NotFoundError("run_id", run_id)
        if run_session != session_id:
            raise InvalidDataError("run_id", "belongs to another session")


def continued_session(
    agent_id: str, external_id: str | None, session_agent: str, session_external_id: str | None
) -> None:
    """Raise unless ``initialize_run(session_id=...)`` may continue that existing session."""
    if session_agent != agent_id:
        raise InvalidDataError("session_id", "belongs to another agent")
    if external_id is not None and external_id != session_external_id:
        raise InvalidDataError("external_id", "differs from the session's external_id")


def refuse_taken(
    dump: Dump,
    taken_agents: Container[str],
    taken_sessions: Container[str],
    taken_runs: Container[str],
    taken_names: Container[str] = (),
) -> None:
    """Refuse an import naming an id (or agent name) the store has already: the first one,
    in the order agent ids, session ids, run ids, agent names, each in document order."""
    checks: tuple[tuple[str, str, list[str], Container[str]], ...] = (
        ("agents", "id", [a.id for a in dump.agents], taken_agents),
        ("sessions", "id", [s.id for s in dump.sessions], taken_sessions),
        ("runs", "id", [r.id for r in dump.runs], taken_runs),
        # merged by name already; one may have been created by another process meanwhile
        ("agents", "name", [a.name for a in dump.agents], taken_names),
    )
    for kind, key, values, taken in checks:
        for index, value in enumerate(values):
            if value in taken:
                raise InvalidDataError(f"{kind}[{index}].{key}", f"{quote(value)} exists already")


AgentMetadata = tuple[str | None, str | None, str | None, str | None]


def merge_agent_metadata(request: NewRun, stored: AgentMetadata) -> AgentMetadata | None:
    """The agent's (description, input_schema, output_schema, workflow) after ``request``,
    or None when nothing changes. JSON is compared as ``_canonical`` text: key order is not
    kept, but 0, 0.0 and false differ (as in PostgreSQL's jsonb)."""
    given = (request.description, request.input_schema, request.output_schema, request.workflow)
    changed = given[0] is not None and given[0] != stored[0]
    for new, old in zip(given[1:], stored[1:], strict=True):
        changed = changed or (new is not None and _canonical(new) != _canonical(old))
    if not changed:
        return None
    merged = tuple(new if new is not None else old for new, old in zip(given, stored, strict=True))
    return merged  # type: ignore[return-value]


def _canonical(metadata: str | None) -> str | None:  # any JSON text, not only metadata
    """JSON text that is equal for equal values: key order ignored, 1, 1.0 and true apart,
    -0.0 as 0.0 (PostgreSQL does not keep the sign of zero)."""
    if metadata is None:
        return None
    return json.dumps(json.loads(metadata, parse_float=_float), sort_keys=True)


def _float(text: str) -> float:
    return float(text) + 0.0  # -0.0 + 0.0 == 0.0


RepeatFields = tuple[str, str | None, str | None, str | None, int | None]


def repeat_fields(message: ChatMsg) -> RepeatFields:
    """What ``check_repeat`` compares, of a stored message."""
    metadata = None if message.metadata is None else to_text(message.metadata)
    return (message.role, message.content, message.run_id, metadata, message.token_count)


def check_repeat(stored: RepeatFields, given: RepeatFields) -> None:
    """The idempotency rule, shared by the backends. Both are (role, content, run_id,
    metadata JSON text, token_count): of the message stored under a key, and of a repeat
    of the key. A repeat must ask for the same message."""
    if (
        stored[:3] != given[:3]
        or stored[4] != given[4]
        or (stored[3] != given[3] and _canonical(stored[3]) != _canonical(given[3]))
    ):
        raise InvalidDataError(
            "idempotency_key", "was used for a different message in this session"
        )
