"""Rules every backend applies to what it looked up: pure functions, one place each.

A backend looks up what a rule needs (in its dicts, or with SQL) and calls the rule, which
raises the contract's error or returns. PostgreSQL runs ``continued_session``'s rule inside
its ``initialize_run`` function as well (same order, same errors; the contract suite checks).
"""

from __future__ import annotations

from collections.abc import Container

from ._dump import Dump
from .errors import InvalidDataError, NotFoundError, quote


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
