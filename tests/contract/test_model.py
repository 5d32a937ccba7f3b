"""Model-based test: random operation sequences against a plain reference model.

The model knows only what the contract says (docs/contract.md); every backend must give the
same observable results.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from backends import FACTORIES
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from runstore import (
    ChatMsg,
    DataStorage,
    ErasureReport,
    InvalidDataError,
    NotFoundError,
    PruneReport,
    StoreStats,
    WorkflowState,
    _search,
)

T = TypeVar("T")
# Storable text: no NUL, no lone surrogate (the contract refuses those; test_payloads checks it).
CHARS = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
NAMES = st.sampled_from(["alpha", "beta"])
EXTERNAL = st.sampled_from([None, "u1", "u2"])
# Words that search queries ask for (case, Unicode forms, scripts without spaces).
WORDS = ["apple", "Apple", "APPLES", "café", "Cafe\u0301", "Straße", "東京", "京都", "x", "-"]
TEXT = st.one_of(
    st.none(),
    st.text(CHARS, max_size=12),
    st.lists(st.sampled_from(WORDS), max_size=4).map(" ".join),
    st.lists(st.sampled_from(WORDS), max_size=3).map("".join),
)
SEARCHES: list[tuple[str, dict[str, Any]]] = [
    ("apple", {}),
    ("APPLE apples CAFÉ", {"limit": 3}),
    ("京都 x", {}),
    ("東 strasse", {"external_id": "u1"}),
    ("x café", {"limit": None}),
]
JSON_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)  # the payload integer range (docs/contract.md)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(CHARS, max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(CHARS, max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
PAYLOAD = st.dictionaries(st.text(CHARS, max_size=6), JSON_VALUE, max_size=3)
# Message metadata: no floats, so that a repeat's metadata is equal however a backend
# keeps the sign of zero (test_message_fields covers floats).
METADATA = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["type", "id", "b"]),
        st.none() | st.booleans() | st.integers(-3, 3) | st.text(CHARS, max_size=4),
        max_size=2,
    ),
)
# Session metadata (docs/contract.md, "Session metadata"): JSON objects, no floats (as above).
SESSION_METADATA = st.dictionaries(
    st.sampled_from(["title", "tags", "n"]),
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(CHARS, max_size=6)
    | st.lists(st.text(CHARS, max_size=3), max_size=2),
    max_size=3,
)
TOKENS = st.one_of(st.none(), st.integers(0, 9))
KEYS = st.sampled_from([None, None, "k1", "k2"])


@dataclass
class ModelMsg:
    seq: int
    role: str
    content: str | None
    run_id: str | None
    metadata: dict[str, Any] | None
    token_count: int | None
    key: str | None
    created_at: datetime | None = None  # as the store gave it

    def same_request(self, other: ModelMsg) -> bool:
        """The idempotency rule: metadata compared as JSON values."""
        return (self.role, self.content, self.run_id, self.token_count) == (
            other.role,
            other.content,
            other.run_id,
            other.token_count,
        ) and json.dumps(self.metadata, sort_keys=True) == json.dumps(
            other.metadata, sort_keys=True
        )


@dataclass
class ModelSession:
    agent: str
    external_id: str | None
    messages: list[ModelMsg] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    last_seq: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelRun:
    session: str
    output: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    state: WorkflowState | None = None


class StoreMachine(RuleBasedStateMachine):
    backend = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = Path(tempfile.mkdtemp(prefix="runstore-model-"))
        self.store: DataStorage = self.run(FACTORIES[self.backend](self.folder))
        self.agents: dict[str, str] = {}  # name -> id
        self.sessions: dict[str, ModelSession] = {}
        self.activity: list[str] = []  # session ids, least recent first
        self.runs: dict[str, ModelRun] = {}
        self.pinned = 0

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.store.close())
        self.loop.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def touch(self, session_id: str) -> None:
        if session_id in self.activity:
            self.activity.remove(session_id)
        self.activity.append(session_id)

    def pick(self, data: st.DataObject, options: list[str], unknown: str) -> str:
        # Creation order, not id order: ids are random, so sorting them would make a replay
        # pick different entities.
        return data.draw(st.sampled_from([*options, unknown]))

    @rule(
        name=NAMES,
        external_id=EXTERNAL,
        how=st.sampled_from(["new", "known", "pinned"]),
        data=st.data(),
        payload=PAYLOAD,
        session_metadata=st.one_of(st.none(), SESSION_METADATA),
    )
    def initialize_run(
        self,
        name: str,
        external_id: str | None,
        how: str,
        data: st.DataObject,
        payload: dict[str, Any],
        session_metadata: dict[str, Any] | None,
    ) -> None:
        session_id: str | None = None
        if how == "known" and self.sessions:
            session_id = data.draw(st.sampled_from(list(self.sessions)))
        elif how == "pinned":
            self.pinned += 1
            session_id = f"pinned-{self.pinned}"
        expected_error: type[Exception] | None = None
        if session_id in self.sessions:
            known = self.sessions[session_id]
            if known.agent != name or (
                external_id is not None and external_id != known.external_id
            ):
                expected_error = InvalidDataError
        call = self.store.initialize_run(
            workflow_name=name,
            session_id=session_id,
            external_id=external_id,
            input_data=payload,
            session_metadata=session_metadata,
        )
        if expected_error is not None:
            before = self.run(self.store.export_data())
            with pytest.raises(expected_error):
                self.run(call)
            assert self.run(self.store.export_data()) == before
            return
        handle = self.run(call)
        if name in self.agents:
            assert handle.agent_id == self.agents[name]
        self.agents[name] = handle.agent_id
        if session_id is None and external_id is not None:
            matches = [
                s
                for s in reversed(self.activity)
                if self.sessions[s].agent == name and self.sessions[s].external_id == external_id
            ]
            if matches:
                session_id = matches[0]
        if session_id is not None:
            assert handle.session_id == session_id
        assert handle.session_id not in self.runs
        session = self.sessions.setdefault(handle.session_id, ModelSession(name, external_id))
        if session_metadata is not None:  # a new session's, or replacing a known one's
            session.metadata = session_metadata
        session.runs.append(handle.run_id)
        self.runs[handle.run_id] = ModelRun(handle.session_id)
        self.touch(handle.session_id)
        record = self.run(self.store.get_run(handle.run_id))
        assert record is not None and record.input_data == payload

    @rule(
        data=st.data(),
        role=st.sampled_from(["user", "assistant"]),
        content=TEXT,
        with_run=st.booleans(),
        metadata=METADATA,
        token_count=TOKENS,
        key=KEYS,
    )
    def add_message(
        self,
        data: st.DataObject,
        role: str,
        content: str | None,
        with_run: bool,
        metadata: dict[str, Any] | None,
        token_count: int | None,
        key: str | None,
    ) -> None:
        session_id = self.pick(data, list(self.sessions), "no-such-session")
        session = self.sessions.get(session_id)
        run_id = None
        if with_run:
            run_id = self.pick(data, list(self.runs), "no-such-run")
        agent_id = self.agents[session.agent] if session else "no-agent"
        call = self.store.add_chat_message(
            agent_id=agent_id,
            session_id=session_id,
            run_id=run_id,
            role=role,
            content=content,
            metadata=metadata,
            token_count=token_count,
            idempotency_key=key,
        )
        if session is None:
            with pytest.raises(NotFoundError):
                self.run(call)
            return
        if run_id is not None and run_id not in self.runs:
            with pytest.raises(NotFoundError):
                self.run(call)
            return
        if run_id is not None and self.runs[run_id].session != session_id:
            with pytest.raises(InvalidDataError):
                self.run(call)
            return
        wanted = ModelMsg(0, role, content, run_id, metadata, token_count, key)
        stored = [m for m in session.messages if key is not None and m.key == key]
        if stored and not stored[0].same_request(wanted):
            before = self.run(self.store.export_data())
            with pytest.raises(InvalidDataError) as caught:
                self.run(call)
            assert caught.value.field == "idempotency_key"
            assert self.run(self.store.export_data()) == before
            return
        message = self.run(call)
        if stored:
            assert self.view(message) == self.view(stored[0])
            return
        session.last_seq += 1
        wanted.seq = session.last_seq
        session.messages.append(wanted)
        assert self.view(message) == self.view(wanted)
        wanted.created_at = message.created_at
        self.touch(session_id)

    @staticmethod
    def view(message: Any) -> tuple[Any, ...]:
        return (
            message.seq,
            message.role,
            message.content,
            message.run_id,
            message.metadata,
            message.token_count,
        )

    def known_session(self, data: st.DataObject) -> tuple[str, ModelSession | None]:
        session_id = self.pick(data, list(self.sessions), "no-such-session")
        return session_id, self.sessions.get(session_id)

    @rule(
        data=st.data(),
        after_seq=st.one_of(st.none(), st.integers(0, 12)),
        batch=st.lists(st.tuples(TEXT, METADATA, TOKENS), max_size=3),
        with_run=st.booleans(),
        guess=st.sampled_from([None, "newest", "stale"]),
        drop=st.one_of(st.none(), st.none(), st.integers(0, 12)),
    )
    def append_batch(
        self,
        data: st.DataObject,
        after_seq: int | None,
        batch: list[tuple[str | None, dict[str, Any] | None, int | None]],
        with_run: bool,
        guess: str | None,
        drop: int | None,
    ) -> None:
        """add_chat_messages, or replace_history (maybe with if_newest_seq and
        drop_through_seq) when ``after_seq`` is given."""
        session_id, session = self.known_session(data)
        run_id = self.pick(data, list(self.runs), "no-such-run") if with_run else None
        messages = [
            ChatMsg("user", content, run_id=run_id, metadata=metadata, token_count=tokens)
            for content, metadata, tokens in batch
        ]
        newest = session.messages[-1].seq if session and session.messages else 0
        if_newest = None if guess is None else newest + (guess == "stale")
        if after_seq is None:
            drop = None
            call = self.store.add_chat_messages(session_id, messages)
        else:
            call = self.store.replace_history(
                session_id,
                after_seq=after_seq,
                messages=messages,
                if_newest_seq=if_newest,
                drop_through_seq=drop,
            )
        refused: type[Exception] | None = None
        if after_seq is not None and drop is not None and drop > after_seq:
            refused = InvalidDataError  # checked before the store is asked
        elif session is None or (messages and run_id is not None and run_id not in self.runs):
            refused = NotFoundError
        elif messages and run_id is not None and self.runs[run_id].session != session_id:
            refused = InvalidDataError
        if refused is not None:
            before = self.run(self.store.export_data())
            with pytest.raises(refused):
                self.run(call)
            assert self.run(self.store.export_data()) == before
            return
        assert session is not None
        if after_seq is not None and guess == "stale":
            assert self.run(call) is None
            return
        stored = self.run(call)
        assert stored is not None
        kept = [
            m
            for m in session.messages
            if (after_seq is None or m.seq <= after_seq) and (drop is None or m.seq > drop)
        ]
        if len(kept) < len(session.messages) or messages:
            self.touch(session_id)
        session.messages = kept
        for (content, metadata, tokens), got in zip(batch, stored, strict=True):
            session.last_seq += 1
            wanted = ModelMsg(session.last_seq, "user", content, run_id, metadata, tokens, None)
            session.messages.append(wanted)
            assert self.view(got) == self.view(wanted)
            wanted.created_at = got.created_at

    @rule(data=st.data())
    def pop_message(self, data: st.DataObject) -> None:
        session_id, session = self.known_session(data)
        if session is None:
            with pytest.raises(NotFoundError):
                self.run(self.store.pop_message(session_id))
            return
        popped = self.run(self.store.pop_message(session_id))
        if not session.messages:
            assert popped is None
            return
        assert popped is not None and self.view(popped) == self.view(session.messages.pop())
        self.touch(session_id)

    @rule(data=st.data(), after_seq=st.integers(0, 12))
    def truncate_history(self, data: st.DataObject, after_seq: int) -> None:
        session_id, session = self.known_session(data)
        call = self.store.truncate_history(session_id, after_seq=after_seq)
        if session is None:
            with pytest.raises(NotFoundError):
                self.run(call)
            return
        kept = [m for m in session.messages if m.seq <= after_seq]
        assert self.run(call) == len(session.messages) - len(kept)
        if len(kept) < len(session.messages):
            self.touch(session_id)
        session.messages = kept

    @rule(
        data=st.data(),
        through_seq=st.one_of(st.none(), st.integers(0, 12)),
        external_id=EXTERNAL,
        pinned=st.booleans(),
    )
    def fork_session(
        self, data: st.DataObject, through_seq: int | None, external_id: str | None, pinned: bool
    ) -> None:
        session_id, parent = self.known_session(data)
        new_id = None
        if pinned:
            new_id = self.pick(data, [f"pinned-{self.pinned + 1}"], session_id)
        call = self.store.fork_session(
            session_id, through_seq=through_seq, new_session_id=new_id, external_id=external_id
        )
        if parent is None:
            with pytest.raises(NotFoundError):
                self.run(call)
            return
        if new_id == session_id:
            with pytest.raises(InvalidDataError) as caught:
                self.run(call)
            assert caught.value.field == "new_session_id"
            return
        if new_id is not None:
            self.pinned += 1
        record = self.run(call)
        copied = [
            ModelMsg(m.seq, m.role, m.content, None, m.metadata, m.token_count, m.key, m.created_at)
            for m in parent.messages
            if through_seq is None or m.seq <= through_seq
        ]
        newest = copied[-1].seq if copied else 0
        assert (record.parent_session_id, record.forked_from_seq) == (session_id, newest)
        assert record.agent_id == self.agents[parent.agent]
        assert new_id is None or record.id == new_id
        assert record.id not in self.sessions
        fork = ModelSession(parent.agent, external_id or parent.external_id, copied)
        fork.last_seq = newest
        fork.metadata = parent.metadata  # a copy: the model never changes one in place
        assert record.metadata == parent.metadata
        self.sessions[record.id] = fork
        self.touch(record.id)

    @rule(data=st.data(), metadata=SESSION_METADATA)
    def update_session(self, data: st.DataObject, metadata: dict[str, Any]) -> None:
        session_id = self.pick(data, list(self.sessions), "no-such-session")
        call = self.store.update_session(session_id, metadata=metadata)
        session = self.sessions.get(session_id)
        if session is None:
            with pytest.raises(NotFoundError):
                self.run(call)
            return
        record = self.run(call)
        session.metadata = metadata  # not activity: the order of sessions stays
        assert (record.id, record.metadata) == (session_id, metadata)

    @rule(external_id=st.sampled_from(["u1", "u2", "nobody"]))
    def delete_sessions(self, external_id: str) -> None:
        doomed = [i for i, s in self.sessions.items() if s.external_id == external_id]
        assert self.run(self.store.delete_sessions(external_id=external_id)) == len(doomed)
        for session_id in doomed:
            for run_id in self.sessions.pop(session_id).runs:
                del self.runs[run_id]
            self.activity.remove(session_id)

    @rule(
        data=st.data(),
        limit=st.one_of(st.none(), st.integers(0, 8)),
        max_chars=st.one_of(st.none(), st.integers(0, 30)),
        max_tokens=st.one_of(st.none(), st.integers(0, 20)),
        exclude=st.booleans(),
    )
    def read_history(
        self,
        data: st.DataObject,
        limit: int | None,
        max_chars: int | None,
        max_tokens: int | None,
        exclude: bool,
    ) -> None:
        session_id = self.pick(data, list(self.sessions), "no-such-session")
        exclude_run = self.pick(data, list(self.runs), "no-such-run") if exclude else None
        got = self.run(
            self.store.get_chat_history(
                session_id,
                limit,
                max_chars=max_chars,
                max_tokens=max_tokens,
                exclude_run_id=exclude_run,
            )
        )
        session = self.sessions.get(session_id)
        messages = session.messages if session else []
        kept = [m for m in messages if exclude_run is None or m.run_id != exclude_run]
        if limit is not None:
            kept = kept[-limit:] if limit else []
        for budget, size in [
            (max_chars, lambda m: len(m.content or "")),
            (max_tokens, lambda m: m.token_count or 0),
        ]:
            if budget is not None:
                window: list[ModelMsg] = []
                total = 0
                for m in reversed(kept):
                    total += size(m)
                    if total > budget:
                        break
                    window.insert(0, m)
                kept = window
        assert [self.view(m) for m in got] == [self.view(m) for m in kept]

    @rule(
        data=st.data(),
        after_seq=st.integers(0, 12),
        limit=st.one_of(st.none(), st.integers(0, 5)),
    )
    def read_history_after(self, data: st.DataObject, after_seq: int, limit: int | None) -> None:
        session_id = self.pick(data, list(self.sessions), "no-such-session")
        got = self.run(
            self.store.get_chat_history_after(session_id, after_seq=after_seq, limit=limit)
        )
        session = self.sessions.get(session_id)
        later = [m for m in (session.messages if session else []) if m.seq > after_seq]
        assert [self.view(m) for m in got] == [self.view(m) for m in later[:limit]]

    @rule(
        data=st.data(), output=st.one_of(st.none(), PAYLOAD), context=st.one_of(st.none(), PAYLOAD)
    )
    def update_run(
        self, data: st.DataObject, output: dict[str, Any] | None, context: dict[str, Any] | None
    ) -> None:
        run_id = self.pick(data, list(self.runs), "no-such-run")
        call = self.store.update_run(run_id, output_data=output, context=context)
        if run_id not in self.runs:
            with pytest.raises(NotFoundError):
                self.run(call)
            return
        self.run(call)
        run = self.runs[run_id]
        run.output = output if output is not None else run.output
        run.context = context if context is not None else run.context
        self.touch(run.session)
        record = self.run(self.store.get_run(run_id))
        assert record is not None and (record.output_data, record.context) == (
            run.output,
            run.context,
        )

    @rule(
        data=st.data(),
        status=st.sampled_from(["pending", "running", "completed", "failed"]),
        payload=PAYLOAD,
        trace=st.lists(st.text(CHARS, max_size=5), max_size=3),
    )
    def save_and_load_state(
        self, data: st.DataObject, status: Any, payload: dict[str, Any], trace: list[str]
    ) -> None:
        run_id = self.pick(data, list(self.runs), "no-such-run")
        state = WorkflowState("wf", status=status, data=payload, trace=trace, run_id=run_id)
        if run_id not in self.runs:
            with pytest.raises(NotFoundError):
                self.run(self.store.save_state(run_id, state))
            assert self.run(self.store.load_state(run_id)) is None
            return
        self.run(self.store.save_state(run_id, state))
        self.runs[run_id].state = state
        self.touch(self.runs[run_id].session)
        other = self.pick(data, list(self.runs), "no-such-run")
        expected = self.runs[other].state if other in self.runs else None
        assert self.run(self.store.load_state(other)) == expected

    @rule(data=st.data())
    def delete_session(self, data: st.DataObject) -> None:
        session_id = self.pick(data, list(self.sessions), "no-such-session")
        if session_id not in self.sessions:
            with pytest.raises(NotFoundError):
                self.run(self.store.delete_session(session_id))
            return
        self.run(self.store.delete_session(session_id))
        for run_id in self.sessions.pop(session_id).runs:
            del self.runs[run_id]
        self.activity.remove(session_id)

    @rule(external_id=st.sampled_from(["u1", "u2", "nobody"]))
    def erase(self, external_id: str) -> None:
        doomed = [i for i, s in self.sessions.items() if s.external_id == external_id]
        runs = sum(len(self.sessions[i].runs) for i in doomed)
        messages = sum(len(self.sessions[i].messages) for i in doomed)
        report = self.run(self.store.erase(external_id))
        assert report == ErasureReport(len(doomed), runs, messages, 0)
        for session_id in doomed:
            for run_id in self.sessions.pop(session_id).runs:
                del self.runs[run_id]
            self.activity.remove(session_id)

    @rule(keep_last=st.integers(0, 3))
    def prune_keep_last(self, keep_last: int) -> None:
        removed = 0
        for session in self.sessions.values():
            gone = max(0, len(session.messages) - keep_last)
            removed += gone
            del session.messages[:gone]
        assert self.run(self.store.prune(keep_last=keep_last)) == PruneReport(messages=removed)

    @rule(external_id=st.sampled_from([None, "u1", "u2"]))
    def stats(self, external_id: str | None) -> None:
        chosen = [
            s for s in self.sessions.values() if external_id is None or s.external_id == external_id
        ]
        stats = self.run(self.store.stats(external_id=external_id))
        contents = [m.content or "" for s in chosen for m in s.messages]
        assert stats == StoreStats(
            len(chosen),
            sum(len(s.runs) for s in chosen),
            len(contents),
            0,
            sum(len(c.encode("utf-8", "surrogatepass")) for c in contents),
        )

    @rule(limit=st.integers(1, 4))
    def page_through_sessions(self, limit: int) -> None:
        seen: list[str] = []
        before = None
        while page := self.run(self.store.list_sessions(limit=limit, before=before)):
            seen += [s.id for s in page]
            before = page[-1].id
        assert seen == list(reversed(self.activity))

    @invariant()
    def search_matches_brute_force(self) -> None:
        """search_messages gives what scoring every message of the model gives (the rule's
        own ``_search.score``), in the contract's order."""
        for query, filters in SEARCHES:
            parsed = _search.parse(query)
            wanted = []
            for session_id, session in self.sessions.items():
                if filters.get("external_id", session.external_id) != session.external_id:
                    continue
                for m in session.messages:
                    score = _search.score(parsed, m.content)
                    if score:
                        wanted.append((score, m.created_at, m.seq, session_id))
            wanted.sort(reverse=True)
            limit = filters.get("limit", 10)
            hits = self.run(self.store.search_messages(query, **filters))
            got = [(h.score, h.message.created_at, h.message.seq, h.session.id) for h in hits]
            assert got == wanted[:limit]
            for hit in hits:
                model = self.sessions[hit.session.id].messages
                [message] = [m for m in model if m.seq == hit.message.seq]
                assert self.view(hit.message) == self.view(message)

    @invariant()
    def runs_and_agents_match(self) -> None:
        agents = self.run(self.store.list_agents())
        assert {a.name: a.id for a in agents} == self.agents
        for session_id, session in self.sessions.items():
            runs = self.run(self.store.list_runs(session_id))
            assert [r.id for r in runs] == session.runs
        listed = self.run(self.store.list_sessions(limit=None))
        assert {s.id: s.metadata for s in listed} == {
            session_id: session.metadata for session_id, session in self.sessions.items()
        }


@pytest.mark.parametrize("seed", [0])
def test_store_matches_the_model(backend: str, seed: int) -> None:
    machine = type(f"StoreMachine_{backend}", (StoreMachine,), {"backend": backend})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=40,
            stateful_step_count=25,
            deadline=None,
            derandomize=False,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
