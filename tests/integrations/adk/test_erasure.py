"""erase(user_id) on an ADK store (docs/contract.md, "Erasure"): the user's sessions, events
and user state are entries owned by the ADK ``user_id``, so after ``store.erase`` no text of the
user is left in any table, entry or export, while another user's session reads back whole and
takes new events; app state (shared) stays. On every backend."""

from __future__ import annotations

from pathlib import Path

from backends import FACTORIES
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.genai import types
from integrations.erasure import stored_texts

from runstore.integrations.adk import RunstoreSessionService


def event(text: str, **delta: object) -> Event:
    return Event(
        id=Event.new_id(),
        invocation_id="inv-1",
        author="user",
        content=types.Content(role="user", parts=[types.Part(text=text)]),
        actions=EventActions(state_delta=dict(delta)),
    )


def texts(events: list[Event]) -> list[str]:
    return [e.content.parts[0].text for e in events]  # type: ignore[index,union-attr,misc]


async def test_erase_removes_one_user_and_keeps_another(backend: str, tmp_path: Path) -> None:
    store = await FACTORIES[backend](tmp_path)
    try:
        service = RunstoreSessionService(store)
        x = await service.create_session(
            app_name="app", user_id="user-x", state={"note": "x-secret-state"}
        )
        y = await service.create_session(app_name="app", user_id="user-y")
        for turn in range(3):
            await service.append_event(
                x, event(f"x-secret-{turn}", **{"user:name": "x-secret-name", "app:n": turn})
            )
            await service.append_event(y, event(f"y-words-{turn}", **{"user:name": "y-name"}))
        assert "x-secret-2" in await stored_texts(store, ["adk"])
        report = await store.erase("user-x")
        assert report.entries == 5  # the session, three events, the user state
        left = await stored_texts(store, ["adk"])
        assert "x-secret" not in left and "user-x" not in left
        assert await service.get_session(app_name="app", user_id="user-x", session_id=x.id) is None
        listed = await service.list_sessions(app_name="app", user_id="user-x")
        assert listed.sessions == []
        # the other user's session reads back whole, with app state, and goes on
        again = await service.get_session(app_name="app", user_id="user-y", session_id=y.id)
        assert again is not None
        assert texts(again.events) == ["y-words-0", "y-words-1", "y-words-2"]
        assert again.state["user:name"] == "y-name" and again.state["app:n"] == 2
        await service.append_event(again, event("y-words-3"))
        final = await service.get_session(app_name="app", user_id="user-y", session_id=y.id)
        assert final is not None and texts(final.events)[-1] == "y-words-3"
    finally:
        await store.close()
