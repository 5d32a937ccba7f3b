"""ADK session-service behaviour, written from ADK's documentation (``BaseSessionService``,
``GetSessionConfig``, ``State`` and the session docs), since ADK's sdist ships no tests.

Every test runs on ``RunstoreSessionService`` over each runstore backend and, as the reference,
on ADK's own ``InMemorySessionService`` and ``DatabaseSessionService`` (SQLite via aiosqlite).
Stale-session detection is documented for persistent services only, so those tests leave out
``InMemorySessionService``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from backends import FACTORIES, default_backends
from google.adk.errors import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions import BaseSessionService, DatabaseSessionService, InMemorySessionService
from google.adk.sessions.base_session_service import GetSessionConfig
from google.genai import types

from runstore.integrations.adk import RunstoreSessionService

REFERENCE = ["InMemorySessionService", "DatabaseSessionService"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "service_name" in metafunc.fixturenames:
        option = metafunc.config.getoption("--backends")
        backends = option.split(",") if option else default_backends()
        names = [f"runstore-{b}" for b in backends] + REFERENCE
        if metafunc.definition.get_closest_marker("persistent"):
            names.remove("InMemorySessionService")
        metafunc.parametrize(
            "service_name",
            [
                pytest.param(n, marks=pytest.mark.reference(n)) if n in REFERENCE else n
                for n in names
            ],
        )


@pytest.fixture
async def service(service_name: str, tmp_path: Path) -> AsyncIterator[BaseSessionService]:
    if service_name == "InMemorySessionService":
        yield InMemorySessionService()
    elif service_name == "DatabaseSessionService":
        db = DatabaseSessionService(f"sqlite+aiosqlite:///{tmp_path / 'adk.db'}")
        yield db
        await db.close()
    else:
        store = await FACTORIES[service_name.removeprefix("runstore-")](tmp_path)
        yield RunstoreSessionService(store)
        await store.close()


def event(
    text: str, *, author: str = "user", timestamp: float | None = None, **delta: object
) -> Event:
    fields: dict[str, object] = {
        "id": Event.new_id(),
        "invocation_id": "inv-1",
        "author": author,
        "content": types.Content(role="user", parts=[types.Part(text=text)]),
        "actions": EventActions(state_delta=dict(delta)),
    }
    if timestamp is not None:
        fields["timestamp"] = timestamp
    return Event(**fields)  # type: ignore[arg-type]


def texts(events: list[Event]) -> list[str]:
    return [e.content.parts[0].text for e in events]  # type: ignore[index,union-attr,misc]


async def test_create_and_get(service: BaseSessionService) -> None:
    made = await service.create_session(app_name="app", user_id="u1", state={"k": "v"})
    assert made.id and made.app_name == "app" and made.user_id == "u1"
    assert made.state == {"k": "v"} and made.events == []
    got = await service.get_session(app_name="app", user_id="u1", session_id=made.id)
    assert got is not None and got.id == made.id and got.state == {"k": "v"} and got.events == []
    assert await service.get_session(app_name="app", user_id="u2", session_id=made.id) is None
    assert await service.get_session(app_name="other", user_id="u1", session_id=made.id) is None
    assert await service.get_session(app_name="app", user_id="u1", session_id="nope") is None


async def test_caller_chosen_id_and_duplicates(service: BaseSessionService) -> None:
    made = await service.create_session(app_name="app", user_id="u1", session_id="s-1")
    assert made.id == "s-1"
    with pytest.raises(AlreadyExistsError):
        await service.create_session(app_name="app", user_id="u1", session_id="s-1")
    other_user = await service.create_session(app_name="app", user_id="u2", session_id="s-1")
    assert other_user.id == "s-1"


async def test_state_scopes_and_prefixes(service: BaseSessionService) -> None:
    first = await service.create_session(
        app_name="app",
        user_id="u1",
        state={"app:theme": "dark", "user:name": "Ada", "temp:scratch": 1, "topic": "chess"},
    )
    assert first.state == {"app:theme": "dark", "user:name": "Ada", "topic": "chess"}
    same_user = await service.create_session(app_name="app", user_id="u1")
    assert same_user.state == {"app:theme": "dark", "user:name": "Ada"}
    other_user = await service.create_session(app_name="app", user_id="u2")
    assert other_user.state == {"app:theme": "dark"}
    other_app = await service.create_session(app_name="app2", user_id="u1")
    assert other_app.state == {}
    assert await service.get_user_state(app_name="app", user_id="u1") == {"name": "Ada"}
    assert await service.get_user_state(app_name="app", user_id="u3") == {}


async def test_append_event_applies_every_scope(service: BaseSessionService) -> None:
    session = await service.create_session(app_name="app", user_id="u1")
    other = await service.create_session(app_name="app", user_id="u1")
    appended = await service.append_event(
        session,
        event("hi", **{"app:count": 1, "user:lang": "fr", "temp:t": "x", "mood": "ok"}),
    )
    assert appended.actions.state_delta == {"app:count": 1, "user:lang": "fr", "mood": "ok"}
    assert session.state["temp:t"] == "x"  # visible during the invocation ...
    got = await service.get_session(app_name="app", user_id="u1", session_id=session.id)
    assert got is not None
    assert got.state == {"app:count": 1, "user:lang": "fr", "mood": "ok"}  # ... never stored
    assert texts(got.events) == ["hi"]
    assert got.events[0].id == appended.id and got.events[0].author == "user"
    assert got.events[0].actions.state_delta == appended.actions.state_delta
    seen = await service.get_session(app_name="app", user_id="u1", session_id=other.id)
    assert seen is not None and seen.state == {"app:count": 1, "user:lang": "fr"}


async def test_events_round_trip_in_order(service: BaseSessionService) -> None:
    session = await service.create_session(app_name="app", user_id="u1")
    for i in range(5):
        await service.append_event(session, event(f"m{i}", author="user" if i % 2 else "bot"))
    got = await service.get_session(app_name="app", user_id="u1", session_id=session.id)
    assert got is not None
    assert texts(got.events) == [f"m{i}" for i in range(5)]
    assert [e.author for e in got.events] == ["bot", "user", "bot", "user", "bot"]
    assert [e.id for e in got.events] == [e.id for e in session.events]


async def test_num_recent_events(service: BaseSessionService) -> None:
    session = await service.create_session(app_name="app", user_id="u1")
    for i in range(6):
        await service.append_event(session, event(f"m{i}"))

    async def read(config: GetSessionConfig | None) -> list[str]:
        got = await service.get_session(
            app_name="app", user_id="u1", session_id=session.id, config=config
        )
        assert got is not None
        return texts(got.events)

    assert await read(GetSessionConfig(num_recent_events=2)) == ["m4", "m5"]
    assert await read(GetSessionConfig(num_recent_events=10)) == [f"m{i}" for i in range(6)]
    assert await read(GetSessionConfig(num_recent_events=0)) == []
    assert await read(GetSessionConfig()) == [f"m{i}" for i in range(6)]
    assert await read(None) == [f"m{i}" for i in range(6)]
    with pytest.raises(ValueError):
        GetSessionConfig(num_recent_events=-1)


async def test_after_timestamp(service: BaseSessionService) -> None:
    session = await service.create_session(app_name="app", user_id="u1")
    base = session.last_update_time + 10
    for i in range(5):
        await service.append_event(session, event(f"m{i}", timestamp=base + i))

    async def read(**config: float | int) -> list[str]:
        got = await service.get_session(
            app_name="app",
            user_id="u1",
            session_id=session.id,
            config=GetSessionConfig(**config),  # type: ignore[arg-type]
        )
        assert got is not None
        return texts(got.events)

    assert await read(after_timestamp=base + 2) == ["m2", "m3", "m4"]  # >= the timestamp
    assert await read(after_timestamp=base + 2.5) == ["m3", "m4"]
    assert await read(after_timestamp=base + 100) == []
    assert await read(after_timestamp=base + 1, num_recent_events=2) == ["m3", "m4"]
    assert await read(after_timestamp=base + 3, num_recent_events=4) == ["m3", "m4"]


async def test_list_sessions(service: BaseSessionService) -> None:
    a = await service.create_session(app_name="app", user_id="u1", state={"k": 1})
    b = await service.create_session(app_name="app", user_id="u2", state={"user:x": 2})
    c = await service.create_session(app_name="app", user_id="u1")
    await service.create_session(app_name="other", user_id="u1")
    await service.append_event(a, event("newest activity"))
    mine = (await service.list_sessions(app_name="app", user_id="u1")).sessions
    assert [s.id for s in mine] == [c.id, a.id]  # oldest activity first
    assert all(s.events == [] for s in mine)
    assert mine[1].state == {"k": 1}
    everyone = (await service.list_sessions(app_name="app")).sessions
    assert {s.id for s in everyone} == {a.id, b.id, c.id}
    assert next(s for s in everyone if s.id == b.id).state == {"user:x": 2}
    assert (await service.list_sessions(app_name="app", user_id="nobody")).sessions == []


async def test_delete_session(service: BaseSessionService) -> None:
    gone = await service.create_session(app_name="app", user_id="u1", session_id="s1")
    kept = await service.create_session(app_name="app", user_id="u1", session_id="s10")
    await service.append_event(gone, event("bye"))
    await service.append_event(kept, event("stay"))
    await service.delete_session(app_name="app", user_id="u1", session_id="s1")
    assert await service.get_session(app_name="app", user_id="u1", session_id="s1") is None
    left = await service.get_session(app_name="app", user_id="u1", session_id="s10")
    assert left is not None and texts(left.events) == ["stay"]
    listed = (await service.list_sessions(app_name="app", user_id="u1")).sessions
    assert [s.id for s in listed] == ["s10"]
    await service.delete_session(app_name="app", user_id="u1", session_id="never")
    again = await service.create_session(app_name="app", user_id="u1", session_id="s1")
    got = await service.get_session(app_name="app", user_id="u1", session_id=again.id)
    assert got is not None and got.events == []


async def test_append_to_a_deleted_session_is_refused(service: BaseSessionService) -> None:
    session = await service.create_session(app_name="app", user_id="u1")
    await service.delete_session(app_name="app", user_id="u1", session_id=session.id)
    with pytest.raises(SessionNotFoundError):
        await service.append_event(session, event("late"))


async def test_partial_events_are_not_stored(service: BaseSessionService) -> None:
    session = await service.create_session(app_name="app", user_id="u1")
    partial = event("stream chunk", mood="x")
    partial.partial = True
    await service.append_event(session, partial)
    got = await service.get_session(app_name="app", user_id="u1", session_id=session.id)
    assert got is not None and got.events == [] and got.state == {}


@pytest.mark.persistent
async def test_stale_session_is_refused(service: BaseSessionService) -> None:
    session = await service.create_session(app_name="app", user_id="u1")
    one = await service.get_session(app_name="app", user_id="u1", session_id=session.id)
    two = await service.get_session(app_name="app", user_id="u1", session_id=session.id)
    assert one is not None and two is not None
    await service.append_event(one, event("first", n=1))
    await service.append_event(one, event("second", n=2))  # the writer's own copy stays current
    with pytest.raises(StaleSessionError):
        await service.append_event(two, event("lost update", n=3))
    got = await service.get_session(app_name="app", user_id="u1", session_id=session.id)
    assert got is not None and texts(got.events) == ["first", "second"]
    assert got.state == {"n": 2}
    fresh = await service.get_session(app_name="app", user_id="u1", session_id=session.id)
    assert fresh is not None
    await service.append_event(fresh, event("after reload", n=4))


@pytest.mark.persistent
async def test_racing_appends_from_one_read_keep_one(service: BaseSessionService) -> None:
    session = await service.create_session(app_name="app", user_id="u1")
    copies = [
        await service.get_session(app_name="app", user_id="u1", session_id=session.id)
        for _ in range(5)
    ]
    results = await asyncio.gather(
        *(service.append_event(c, event(f"r{i}")) for i, c in enumerate(copies) if c),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, StaleSessionError) for r in results if isinstance(r, BaseException))
    got = await service.get_session(app_name="app", user_id="u1", session_id=session.id)
    assert got is not None and len(got.events) == 1


async def test_last_update_time_is_the_appended_events_timestamp(
    service: BaseSessionService,
) -> None:
    session = await service.create_session(app_name="app", user_id="u1")
    later = session.last_update_time + 3600.5
    appended = await service.append_event(session, event("hi", timestamp=later))
    assert appended.timestamp == later
    assert session.last_update_time == later
    got = await service.get_session(app_name="app", user_id="u1", session_id=session.id)
    assert got is not None and got.last_update_time == later
    listed = (await service.list_sessions(app_name="app", user_id="u1")).sessions
    assert [s.last_update_time for s in listed] == [later]
    await service.append_event(got, event("next", timestamp=later + 1))
    assert got.last_update_time == later + 1
