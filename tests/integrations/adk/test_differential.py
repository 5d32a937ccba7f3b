"""The same calls on ADK's own ``DatabaseSessionService`` (SQLite, aiosqlite) and
``InMemorySessionService`` and on ``RunstoreSessionService`` over each backend: everything a
caller can observe (every field of every ``Session`` and ``Event`` returned or updated in place,
``last_update_time`` included, and which calls raise what) must be the same.

ADK's clock (``google.adk.platform.time``) is replaced by one the script moves on before each
call, so creation times and event timestamps are the same on every service.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backends import FACTORIES, default_backends
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions, EventCompaction
from google.adk.platform import time as platform_time
from google.adk.sessions import BaseSessionService, DatabaseSessionService, InMemorySessionService
from google.adk.sessions.base_session_service import GetSessionConfig
from google.adk.sessions.session import Session
from google.genai import types

from runstore.integrations.adk import RunstoreSessionService


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend_name" in metafunc.fixturenames:
        option = metafunc.config.getoption("--backends")
        metafunc.parametrize("backend_name", option.split(",") if option else default_backends())


NOW = [0.0]


def tick() -> None:
    NOW[0] += 1.5


@pytest.fixture(autouse=True)
def fake_clock() -> Iterator[None]:
    platform_time.set_time_provider(lambda: NOW[0])
    yield
    platform_time.reset_time_provider()


def session_dump(session: Session | None) -> Any:
    if session is None:
        return None
    return {**session.model_dump(mode="json"), "events": [event_dump(e) for e in session.events]}


def event_dump(event: Event) -> Any:
    return event.model_dump(mode="json")


def text(value: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=value)])


def events() -> list[Event]:
    """Events using most of Event's and EventActions' fields."""
    return [
        Event(id="e1", invocation_id="i1", author="user", content=text("hello")),
        Event(
            id="e2",
            invocation_id="i1",
            author="agent",
            branch="root.agent",
            content=types.Content(
                role="model",
                parts=[
                    types.Part(text="thinking"),
                    types.Part(
                        function_call=types.FunctionCall(id="c1", name="lookup", args={"q": "x"})
                    ),
                ],
            ),
            long_running_tool_ids={"c1"},
            actions=EventActions(
                state_delta={"app:hits": 1, "user:lang": "fr", "temp:scratch": 9, "mood": "ok"},
                artifact_delta={"report.txt": 0},
                transfer_to_agent="helper",
                escalate=False,
                skip_summarization=True,
            ),
            custom_metadata={"trace": "t-1", "nested": {"a": [1, 2]}},
            usage_metadata=types.GenerateContentResponseUsageMetadata(
                prompt_token_count=12, candidates_token_count=3, total_token_count=15
            ),
            turn_complete=True,
        ),
        Event(
            id="e3",
            invocation_id="i2",
            author="helper",
            content=types.Content(
                role="user",
                parts=[
                    types.Part(
                        function_response=types.FunctionResponse(
                            id="c1", name="lookup", response={"result": "y"}
                        )
                    )
                ],
            ),
            actions=EventActions(state_delta={"mood": "better", "count": 2}),
            error_code="E1",
            error_message="recovered",
            interrupted=False,
        ),
        Event(
            id="e4",
            invocation_id="i2",
            author="agent",
            actions=EventActions(
                compaction=EventCompaction(
                    start_timestamp=1.0, end_timestamp=2.0, compacted_content=text("summary")
                ),
                state_delta={"user:lang": "en", "app:hits": 2},
            ),
        ),
        Event(id="e5", invocation_id="i3", author="user", content=text("bye")),
    ]


async def transcript(service: BaseSessionService) -> list[Any]:
    """Runs one script of calls; returns everything observable, in order."""
    out: list[Any] = []
    NOW[0] = 1_800_000_000.25

    async def call(name: str, coroutine: Any) -> Any:
        tick()
        try:
            result = await coroutine
        except Exception as error:  # the error's type is observable
            out.append((name, "raised", type(error).__name__))
            return None
        return result

    made = await call(
        "create s1",
        service.create_session(
            app_name="app",
            user_id="u1",
            session_id="s1",
            state={"app:theme": "dark", "user:name": "Ada", "temp:t": 1, "topic": "chess"},
        ),
    )
    out.append(("create s1", session_dump(made)))
    other = await call(
        "create s2", service.create_session(app_name="app", user_id="u1", session_id="s2")
    )
    out.append(("create s2 state", other.state, other.last_update_time, other.events))
    await call(
        "create s1 again", service.create_session(app_name="app", user_id="u1", session_id="s1")
    )
    third = await call(
        "create s3", service.create_session(app_name="app", user_id="u2", session_id="s3")
    )
    out.append(("create s3", session_dump(third)))

    for event in events():
        tick()
        event.timestamp = NOW[0]
        appended = await call("append", service.append_event(made, event))
        out.append(("appended", event_dump(appended)))
        out.append(("session after append", session_dump(made)))
        got = await service.get_session(app_name="app", user_id="u1", session_id="s1")
        out.append(("get after append", session_dump(got)))

    partial = Event(id="p1", author="agent", content=text("chunk"), partial=True)
    out.append(("partial", event_dump(await service.append_event(made, partial))))
    out.append(("session after partial", session_dump(made)))

    for config in (
        GetSessionConfig(num_recent_events=2),
        GetSessionConfig(num_recent_events=0),
        GetSessionConfig(after_timestamp=made.events[2].timestamp),
        GetSessionConfig(after_timestamp=made.events[1].timestamp + 0.5, num_recent_events=1),
    ):
        got = await service.get_session(
            app_name="app", user_id="u1", session_id="s1", config=config
        )
        out.append(("get with config", config.model_dump(), session_dump(got)))
    for user in ("u1", "u2", None):
        listed = await service.list_sessions(app_name="app", user_id=user)
        out.append(
            (
                "list",
                user,
                [(s.id, s.user_id, s.state, s.last_update_time, s.events) for s in listed.sessions],
            )
        )
    out.append(("user state", await service.get_user_state(app_name="app", user_id="u1")))
    fresh = await service.get_session(app_name="app", user_id="u2", session_id="s3")
    out.append(("s3 sees app state", session_dump(fresh)))

    stale = await service.get_session(app_name="app", user_id="u1", session_id="s1")
    current = await service.get_session(app_name="app", user_id="u1", session_id="s1")
    assert stale is not None and current is not None
    await call("append current", service.append_event(current, Event(id="e6", author="user")))
    out.append(("current after append", session_dump(current)))
    await call("append stale", service.append_event(stale, Event(id="e7", author="user")))

    await service.delete_session(app_name="app", user_id="u1", session_id="s1")
    out.append(
        (
            "after delete",
            session_dump(await service.get_session(app_name="app", user_id="u1", session_id="s1")),
        )
    )
    await call("append deleted", service.append_event(made, Event(id="e8", author="user")))
    listed = await service.list_sessions(app_name="app", user_id="u1")
    out.append(("list after delete", [s.id for s in listed.sessions]))
    return out


def compare(reference: list[Any], got: list[Any], name: str) -> None:
    assert len(got) == len(reference), name
    for want, seen in zip(reference, got, strict=True):
        assert seen == want, f"{name} differs at {want[0]!r}"


async def database_transcript(tmp_path: Path) -> list[Any]:
    db = DatabaseSessionService(f"sqlite+aiosqlite:///{tmp_path / 'adk.db'}")
    try:
        return await transcript(db)
    finally:
        await db.close()


async def test_runstore_service_matches_the_database_service(
    backend_name: str, tmp_path: Path
) -> None:
    reference = await database_transcript(tmp_path)
    store = await FACTORIES[backend_name](tmp_path)
    try:
        got = await transcript(RunstoreSessionService(store))
    finally:
        await store.close()
    compare(reference, got, f"RunstoreSessionService[{backend_name}]")


async def test_the_in_memory_service_matches_the_database_service(tmp_path: Path) -> None:
    """The reference is ADK's own behaviour: its two services agree on this script except for
    stale-session detection, which only persistent services do."""
    reference = await database_transcript(tmp_path)
    got = await transcript(InMemorySessionService())
    stale = [i for i, (w, s) in enumerate(zip(reference, got, strict=False)) if w != s]
    assert stale, "the in-memory service was expected to take the stale append"
    first = stale[0]
    assert reference[first] == ("append stale", "raised", "StaleSessionError")
