"""The error types: what ``NotFoundError`` carries, and caller text quoted short in messages."""

from __future__ import annotations

import pytest
from helpers import start

from runstore import DataStorage, NotFoundError
from runstore.errors import quote


def test_quote_keeps_short_text_and_cuts_long_text() -> None:
    assert quote("abc") == "'abc'"
    assert quote("x" * 40) == repr("x" * 40)
    assert quote("x" * 41) == repr("x" * 40) + "…"


async def test_not_found_names_the_field_and_the_id(store: DataStorage) -> None:
    run = await start(store)
    long_id = "s" * 100
    cases = [
        (store.update_run("no-run"), "run_id", "no-run", "run_id: no run 'no-run'"),
        (
            store.delete_session(long_id),
            "session_id",
            long_id,
            f"session_id: no session {quote(long_id)}",
        ),
        (
            store.delete_agent("nobody"),
            "workflow_name",
            "nobody",
            "workflow_name: no agent 'nobody'",
        ),
        (
            store.add_chat_message(
                agent_id=run.agent_id, session_id="gone", run_id=None, role="user", content="x"
            ),
            "session_id",
            "gone",
            "session_id: no session 'gone'",
        ),
        (
            store.add_chat_message(
                agent_id=run.agent_id,
                session_id=run.session_id,
                run_id="r" * 50,
                role="user",
                content="x",
            ),
            "run_id",
            "r" * 50,
            f"run_id: no run {'r' * 40!r}…",
        ),
    ]
    for call, field, missing_id, message in cases:
        with pytest.raises(NotFoundError) as caught:
            await call
        assert (caught.value.field, caught.value.id, str(caught.value)) == (
            field,
            missing_id,
            message,
        )
