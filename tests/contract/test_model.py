"""Model-based test: random operation sequences against a plain reference model.

The model knows only what the contract says (docs/contract.md); every backend must give the
same observable results.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from backends import FACTORIES
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from runstore import DataStorage, InvalidDataError, NotFoundError, WorkflowState

T = TypeVar("T")
# Storable text: no NUL, no lone surrogate (the contract refuses those; test_payloads checks it).
CHARS = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
NAMES = st.sampled_from(["alpha", "beta"])
EXTERNAL = st.sampled_from([None, "u1", "u2"])
TEXT = st.one_of(st.none(), st.text(CHARS, max_size=12))
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


@dataclass
class ModelSession:
    agent: str
    external_id: str | None
    messages: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)


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
    )
    def initialize_run(
        self,
        name: str,
        external_id: str | None,
        how: str,
        data: st.DataObject,
        payload: dict[str, Any],
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
            workflow_name=name, session_id=session_id, external_id=external_id, input_data=payload
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
    )
    def add_message(
        self, data: st.DataObject, role: str, content: str | None, with_run: bool
    ) -> None:
        session_id = self.pick(data, list(self.sessions), "no-such-session")
        session = self.sessions.get(session_id)
        run_id = None
        if with_run:
            run_id = self.pick(data, list(self.runs), "no-such-run")
        agent_id = self.agents[session.agent] if session else "no-agent"
        call = self.store.add_chat_message(
            agent_id=agent_id, session_id=session_id, run_id=run_id, role=role, content=content
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
        message = self.run(call)
        session.messages.append((role, content, run_id))
        assert message.seq == len(session.messages)
        self.touch(session_id)

    @rule(
        data=st.data(),
        limit=st.one_of(st.none(), st.integers(0, 8)),
        max_chars=st.one_of(st.none(), st.integers(0, 30)),
        exclude=st.booleans(),
    )
    def read_history(
        self, data: st.DataObject, limit: int | None, max_chars: int | None, exclude: bool
    ) -> None:
        session_id = self.pick(data, list(self.sessions), "no-such-session")
        exclude_run = self.pick(data, list(self.runs), "no-such-run") if exclude else None
        got = self.run(
            self.store.get_chat_history(
                session_id, limit, max_chars=max_chars, exclude_run_id=exclude_run
            )
        )
        session = self.sessions.get(session_id)
        numbered = list(enumerate(session.messages, 1)) if session else []
        kept = [(seq, m) for seq, m in numbered if exclude_run is None or m[2] != exclude_run]
        if limit is not None:
            kept = kept[-limit:] if limit else []
        if max_chars is not None:
            window: list[tuple[int, tuple[str, str | None, str | None]]] = []
            total = 0
            for seq, m in reversed(kept):
                total += len(m[1] or "")
                if total > max_chars:
                    break
                window.insert(0, (seq, m))
            kept = window
        assert [(m.seq, m.role, m.content, m.run_id) for m in got] == [(seq, *m) for seq, m in kept]

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

    @rule(limit=st.integers(1, 4))
    def page_through_sessions(self, limit: int) -> None:
        seen: list[str] = []
        before = None
        while page := self.run(self.store.list_sessions(limit=limit, before=before)):
            seen += [s.id for s in page]
            before = page[-1].id
        assert seen == list(reversed(self.activity))

    @invariant()
    def runs_and_agents_match(self) -> None:
        agents = self.run(self.store.list_agents())
        assert {a.name: a.id for a in agents} == self.agents
        for session_id, session in self.sessions.items():
            runs = self.run(self.store.list_runs(session_id))
            assert [r.id for r in runs] == session.runs


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
