"""ADK memory-service behaviour (``BaseMemoryService``): each test makes the same calls on
``RunstoreMemoryService`` over every runstore backend and on ADK's own
``InMemoryMemoryService`` (the reference), and checks both give the same memories. Texts are
plain words, on which ADK's keyword rule and runstore's search rule agree; the order of equal
scores differs (ADK: insertion order; runstore: newest first), so results are compared as
sets, and scores by where a better match stands."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from backends import FACTORIES, default_backends
from google.adk.events.event import Event
from google.adk.memory import InMemoryMemoryService
from google.adk.memory.base_memory_service import BaseMemoryService
from google.adk.sessions import Session
from google.genai import types

from runstore import DataStorage
from runstore.integrations.adk import RunstoreMemoryService


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "service_name" in metafunc.fixturenames:
        option = metafunc.config.getoption("--backends")
        backends = option.split(",") if option else default_backends()
        metafunc.parametrize("service_name", [f"runstore-{b}" for b in backends])


@pytest.fixture
async def stores(service_name: str, tmp_path: Path) -> AsyncIterator[list[DataStorage]]:
    store = await FACTORIES[service_name.removeprefix("runstore-")](tmp_path)
    yield [store]
    await store.close()


@pytest.fixture
def services(stores: list[DataStorage]) -> list[BaseMemoryService]:
    return [InMemoryMemoryService(), RunstoreMemoryService(stores[0])]


def event(text: str | None, *, author: str = "user", event_id: str | None = None) -> Event:
    content = None if text is None else types.Content(role="user", parts=[types.Part(text=text)])
    return Event(id=event_id or Event.new_id(), author=author, content=content, timestamp=1.5)


def session(app: str, user: str, session_id: str, events: list[Event]) -> Session:
    return Session(id=session_id, app_name=app, user_id=user, events=events)


async def found(
    service: BaseMemoryService, query: str, app: str = "app", user: str = "u1"
) -> set[tuple[str | None, str | None, str]]:
    response = await service.search_memory(app_name=app, user_id=user, query=query)
    return {
        (m.id, m.author, " ".join(p.text or "" for p in (m.content.parts or [])))
        for m in response.memories
    }


async def test_search_finds_the_events_of_the_user_of_the_app(
    services: list[BaseMemoryService],
) -> None:
    mine = [event("I like green tea"), event("my cat is called Tom", author="model"), event(None)]
    others = [event("green tea is fine")]
    for service in services:
        await service.add_session_to_memory(session("app", "u1", "s1", mine))
        await service.add_session_to_memory(session("app", "u2", "s2", others))
        await service.add_session_to_memory(session("other-app", "u1", "s3", others))
    results = [await found(service, "Green TEA") for service in services]
    assert results[0] == results[1] == {(mine[0].id, "user", "I like green tea")}
    results = [await found(service, "cat tom") for service in services]
    assert results[0] == results[1] == {(mine[1].id, "model", "my cat is called Tom")}
    for service in services:
        assert await found(service, "tea", user="nobody") == set()
        assert await found(service, "tea", app="nowhere") == set()
        assert await found(service, "coffee") == set()
        assert await found(service, "gre") == set()  # a partial word does not match


async def test_adding_again_stores_nothing_new(services: list[BaseMemoryService]) -> None:
    events = [event("remember the blue door"), event("and the red door")]
    green = event("a green door")
    for service in services:
        for _ in range(3):
            await service.add_session_to_memory(session("app", "u1", "s1", events))
        await service.add_events_to_memory(
            app_name="app", user_id="u1", session_id="s1", events=events[:1]
        )
        await service.add_events_to_memory(
            app_name="app", user_id="u1", session_id="s1", events=[events[0], green]
        )
    results = [await found(service, "door") for service in services]
    assert results[0] == results[1]
    assert len(results[1]) == 3
    response = await services[1].search_memory(app_name="app", user_id="u1", query="door")
    assert len(response.memories) == 3  # each event once


async def test_best_matches_come_first_and_at_most_ten(
    services: list[BaseMemoryService],
) -> None:
    events = [event(f"note number{i} about apples") for i in range(12)]
    best = event("apples and pears about pears")
    for service in services:
        await service.add_events_to_memory(app_name="app", user_id="u1", events=[*events, best])
    for service in services:
        response = await service.search_memory(app_name="app", user_id="u1", query="pears apples")
        assert len(response.memories) == 10
        assert response.memories[0].id == best.id


async def test_deleted_memories_are_gone_and_stay_gone(
    services: list[BaseMemoryService],
) -> None:
    events = [event("the secret code is orange"), event("the weather is orange today")]
    for service in services:
        await service.add_session_to_memory(session("app", "u1", "s1", events))
        await service.delete_memory(app_name="app", user_id="u1", memory_id=events[0].id)
        await service.delete_memory(app_name="app", user_id="u1", memory_id="unknown")
        await service.add_session_to_memory(session("app", "u1", "s1", events))
    results = [await found(service, "orange") for service in services]
    assert results[0] == results[1] == {(events[1].id, "user", "the weather is orange today")}


async def test_erasing_the_user_removes_their_memory(
    services: list[BaseMemoryService], stores: list[DataStorage]
) -> None:
    service = services[1]
    await service.add_session_to_memory(session("app", "u1", "s1", [event("lemon cake")]))
    await service.add_session_to_memory(session("app", "u2", "s2", [event("lemon pie")]))
    assert await stores[0].delete_sessions(external_id="u1") == 1
    assert await found(service, "lemon") == set()
    assert len(await found(service, "lemon", user="u2")) == 1
