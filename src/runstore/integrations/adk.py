"""A Google ADK session service over any runstore store: ``RunstoreSessionService(store)``.

Needs the ``adk`` extra (README, "Install"). Everything lives in the store's entries
(docs/contract.md, "Entries") in one scope (default ``"adk"``), keys joined by ``\\x1f``
(names holding that character are refused):

- ``a\\x1f{app}``: app state (``app:`` keys, unprefixed); ``u\\x1f{app}\\x1f{user}``: user state.
  Both change by merges, so concurrent deltas of different keys all survive.
- ``s\\x1f{app}\\x1f{user}\\x1f{session}``: the session's own state, plus its last update time
  under the reserved key ``"\\x1ft"`` (the creation time, then each appended event's timestamp,
  as ADK's own services keep ``last_update_time``); its ``version`` is the revision a ``Session``
  carries, so a stale session is refused atomically by ``write_entries(..., expect=...)``
  (``StaleSessionError``, as ADK's database service).
- ``e\\x1f{app}\\x1f{user}\\x1f{session}\\x1f{timestamp µs}\\x1f{event id}``: one event (JSON). Keys
  sort by time, so ``after_timestamp`` and ``num_recent_events`` are index range reads.

Every entry but app state is owned by the session's ``user_id`` (``Entry.owner``), so
``store.erase(user_id)`` removes the user's sessions, events and user state.
``temp:`` state is never stored. An append is one ``write_entries`` call: the session's state and
revision, the event, app and user state, all or nothing, only if the session is at the revision
the caller read.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from google.adk.errors import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.platform import time as platform_time
from google.adk.sessions import BaseSessionService, Session, State
from google.adk.sessions.base_session_service import GetSessionConfig, ListSessionsResponse
from pydantic_core import to_jsonable_python
from typing_extensions import override

from .._entries import Entry, EntryPatch, NewEntry
from ..base import DataStorage
from .adk_memory import RunstoreMemoryService

__all__ = ["RunstoreMemoryService", "RunstoreSessionService"]

SEP = "\x1f"
UPDATED = SEP + "t"  # the session entry's last update time (no state key holds \x1f first)
_STALE = (
    "The session has been changed in storage since it was read (a stale session): "
    "get the session again and retry."
)


def _part(value: str, name: str) -> str:
    if not isinstance(value, str) or SEP in value:
        raise ValueError(f"{name}: must be a string without the character \\x1f")
    return value


def _app_key(app: str) -> str:
    return f"a{SEP}{_part(app, 'app_name')}"


def _user_key(app: str, user: str) -> str:
    return f"u{SEP}{_part(app, 'app_name')}{SEP}{_part(user, 'user_id')}"


def _session_key(app: str, user: str, session_id: str) -> str:
    return f"s{SEP}{_part(app, 'app_name')}{SEP}{_part(user, 'user_id')}{SEP}" + _part(
        session_id, "session_id"
    )


def _events_prefix(app: str, user: str, session_id: str) -> str:
    return "e" + _session_key(app, user, session_id)[1:] + SEP


def _updated(entry: Entry) -> tuple[dict[str, Any], float]:
    """A session entry's own state and last update time (older entries: the entry's time)."""
    state = dict(entry.value or {})
    updated = state.pop(UPDATED, None)
    return state, updated if isinstance(updated, float | int) else entry.updated_at.timestamp()


def _micros(timestamp: float) -> str:
    return f"{max(0, math.floor(timestamp * 1_000_000)):020d}"


def _split(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(app, user, session) deltas of a state dict, JSON-safe; ``temp:`` keys dropped."""
    app: dict[str, Any] = {}
    user: dict[str, Any] = {}
    own: dict[str, Any] = {}
    for key, value in to_jsonable_python(state).items():
        if key.startswith(State.APP_PREFIX):
            app[key.removeprefix(State.APP_PREFIX)] = value
        elif key.startswith(State.USER_PREFIX):
            user[key.removeprefix(State.USER_PREFIX)] = value
        elif key.startswith(SEP):
            raise ValueError(f"state: the key {key[:40]!r} starts with the character \\x1f")
        elif not key.startswith(State.TEMP_PREFIX):
            own[key] = value
    return app, user, own


class RunstoreSessionService(BaseSessionService):
    """ADK's ``BaseSessionService`` over a runstore ``DataStorage``."""

    def __init__(self, store: DataStorage, *, scope: str = "adk") -> None:
        self.store = store
        self.scope = scope

    @override
    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        session_id = session_id.strip() if session_id else str(uuid.uuid4())
        key = _session_key(app_name, user_id, session_id)
        app, user, own = _split(state or {})
        written = await self.store.put_entries(
            self.scope,
            [NewEntry(key, {**own, UPDATED: platform_time.get_time()}, owner=user_id)],
            only_if_absent=True,
        )
        if not written:
            raise AlreadyExistsError(f"Session with id {session_id} already exists.")
        if app:
            await self.store.merge_entry(self.scope, _app_key(app_name), app)
        if user:
            await self.store.merge_entry(
                self.scope, _user_key(app_name, user_id), user, owner=user_id
            )
        entry = await self.store.get_entry(self.scope, key)
        if entry is None:  # deleted meanwhile
            raise SessionNotFoundError(f"Session {session_id} not found.")
        return await self._session(app_name, user_id, session_id, entry, [])

    @override
    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        session_id = session_id.strip() if session_id else session_id
        entry = await self.store.get_entry(self.scope, _session_key(app_name, user_id, session_id))
        if entry is None:
            return None
        recent = config.num_recent_events if config else None
        after = config.after_timestamp if config else None
        events: list[Event] = []
        if recent != 0:
            prefix = _events_prefix(app_name, user_id, session_id)
            found = await self.store.list_entries(
                self.scope,
                prefix=prefix,
                after=None if after is None else prefix + _micros(after),
                reverse=True,
                limit=recent,
            )
            events = [Event.model_validate(e.value) for e in reversed(found)]
        return await self._session(app_name, user_id, session_id, entry, events)

    @override
    async def list_sessions(
        self, *, app_name: str, user_id: str | None = None
    ) -> ListSessionsResponse:
        prefix = f"s{SEP}{_part(app_name, 'app_name')}{SEP}"
        users_prefix = f"u{SEP}{app_name}{SEP}"
        if user_id is not None:
            prefix += _part(user_id, "user_id") + SEP
            users_prefix += user_id
        entries = await self.store.list_entries(self.scope, prefix=prefix)
        app_entry = await self.store.get_entry(self.scope, _app_key(app_name))
        app_state = (app_entry.value if app_entry else None) or {}
        user_states = {
            e.key.split(SEP)[2]: e.value or {}
            for e in await self.store.list_entries(self.scope, prefix=users_prefix)
            if user_id is None or e.key == _user_key(app_name, user_id)
        }
        sessions = []
        for entry in entries:
            _, _, user, session_id = entry.key.split(SEP)
            session = self._build(app_name, user, session_id, entry, [])
            session.state.update(_merged(app_state, user_states.get(user, {}), {}))
            sessions.append(session)
        sessions.sort(key=lambda s: (s.last_update_time, s.user_id, s.id))
        return ListSessionsResponse(sessions=sessions)

    @override
    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        key = _session_key(app_name, user_id, session_id)
        await self.store.delete_entries(self.scope, prefix=key, before=key + "\x01")
        await self.store.delete_entries(
            self.scope, prefix=_events_prefix(app_name, user_id, session_id)
        )

    @override
    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        entry = await self.store.get_entry(self.scope, _user_key(app_name, user_id))
        return dict((entry.value if entry else None) or {})

    @override
    async def append_event(self, session: Session, event: Event) -> Event:
        if event.partial:
            return event
        self._apply_temp_state(session, event)
        event = self._trim_temp_delta_state(event)
        delta = event.actions.state_delta if event.actions and event.actions.state_delta else {}
        app, user, own = _split(delta)
        key = _session_key(session.app_name, session.user_id, session.id)
        expected = await self._expected_version(session, key)
        event_key = (
            _events_prefix(session.app_name, session.user_id, session.id)
            + _micros(event.timestamp)
            + SEP
            + _part(event.id or str(uuid.uuid4()), "event.id")
        )
        writes: list[NewEntry | EntryPatch] = [
            EntryPatch(key, {**own, UPDATED: event.timestamp}, owner=session.user_id),
            NewEntry(
                event_key,
                event.model_dump(mode="json", exclude_none=True),
                owner=session.user_id,
            ),
        ]
        if app:
            writes.append(EntryPatch(_app_key(session.app_name), app))
        if user:
            user_key = _user_key(session.app_name, session.user_id)
            writes.append(EntryPatch(user_key, user, owner=session.user_id))
        written = await self.store.write_entries(self.scope, writes, expect={key: expected})
        if written is None:
            if await self.store.get_entry(self.scope, key) is None:
                raise SessionNotFoundError(f"Session {session.id} not found.")
            raise StaleSessionError(_STALE)
        session.last_update_time = event.timestamp
        session._storage_update_marker = str(written[0].version)
        return self._commit_event_to_session(session, event)

    # -- helpers -------------------------------------------------------------------

    async def _expected_version(self, session: Session, key: str) -> int:
        """The stored revision this session was read at. A session built by hand (no
        revision) is current when the newest stored event is its newest event."""
        marker = session._storage_update_marker
        if marker is not None:
            return int(marker)
        entry = await self.store.get_entry(self.scope, key)
        if entry is None:
            raise SessionNotFoundError(f"Session {session.id} not found.")
        newest = await self.store.list_entries(
            self.scope,
            prefix=_events_prefix(session.app_name, session.user_id, session.id),
            reverse=True,
            limit=1,
        )
        stored_id = (newest[0].value or {}).get("id") if newest else None
        held_id = session.events[-1].id if session.events else None
        if stored_id != held_id:
            raise StaleSessionError(_STALE)
        return entry.version

    async def _session(
        self, app_name: str, user_id: str, session_id: str, entry: Entry, events: list[Event]
    ) -> Session:
        app_entry = await self.store.get_entry(self.scope, _app_key(app_name))
        user_entry = await self.store.get_entry(self.scope, _user_key(app_name, user_id))
        session = self._build(app_name, user_id, session_id, entry, events)
        session.state.update(
            _merged(
                (app_entry.value if app_entry else None) or {},
                (user_entry.value if user_entry else None) or {},
                {},
            )
        )
        return session

    @staticmethod
    def _build(
        app_name: str, user_id: str, session_id: str, entry: Entry, events: list[Event]
    ) -> Session:
        state, updated = _updated(entry)
        session = Session(
            id=session_id,
            app_name=app_name,
            user_id=user_id,
            state=state,
            events=events,
            last_update_time=updated,
        )
        session._storage_update_marker = str(entry.version)
        return session


def _merged(app: dict[str, Any], user: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    state = dict(own)
    state.update({State.APP_PREFIX + k: v for k, v in app.items()})
    state.update({State.USER_PREFIX + k: v for k, v in user.items()})
    return state
