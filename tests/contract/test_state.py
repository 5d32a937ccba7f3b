"""save_state / load_state."""

from __future__ import annotations

import pytest
from helpers import start

from runstore import DataStorage, InvalidDataError, NotFoundError, WorkflowState


def sample_state(**changes: object) -> WorkflowState:
    state = WorkflowState(
        workflow_name="chat",
        status="running",
        current_node="reply",
        trace=["start", "reply"],
        data={"name": "Ada", "facts": [1, 2.5, None, True], "nested": {"k": "v"}},
        input_data={"q": "hi"},
        output_data={"answer": 42},
        error=None,
        invocation_id="inv-1",
        token_usage={"prompt": 3, "completion": 4},
        duration_seconds=0.25,
    )
    for name, value in changes.items():
        setattr(state, name, value)
    return state


async def test_state_round_trips(store: DataStorage) -> None:
    run = await start(store)
    state = sample_state(run_id=run.run_id, session_id=run.session_id, agent_id=run.agent_id)
    await store.save_state(run.run_id, state)
    assert await store.load_state(run.run_id) == state
    state.status = "completed"
    await store.save_state(run.run_id, state)
    loaded = await store.load_state(run.run_id)
    assert loaded is not None and loaded.status == "completed"


async def test_state_is_copied_both_ways(store: DataStorage) -> None:
    run = await start(store)
    state = sample_state()
    await store.save_state(run.run_id, state)
    state.data["name"] = "changed after save"
    state.trace.append("late")
    loaded = await store.load_state(run.run_id)
    assert loaded == sample_state()
    assert loaded is not None
    loaded.data["nested"]["k"] = "changed after load"
    assert await store.load_state(run.run_id) == sample_state()


async def test_state_is_stored_apart_from_context(store: DataStorage) -> None:
    run = await start(store)
    await store.save_state(run.run_id, sample_state())
    await store.update_run(run.run_id, context={"ctx": 1})
    assert await store.load_state(run.run_id) == sample_state()
    record = await store.get_run(run.run_id)
    assert record is not None and record.context == {"ctx": 1}


async def test_no_state_yet_and_unknown_runs(store: DataStorage) -> None:
    run = await start(store)
    assert await store.load_state(run.run_id) is None
    assert await store.load_state("unknown") is None
    with pytest.raises(NotFoundError):
        await store.save_state("unknown", sample_state())


async def test_bad_state_is_refused_and_changes_nothing(store: DataStorage) -> None:
    run = await start(store)
    await store.save_state(run.run_id, sample_state())
    before = await store.export_data()
    for field, state in [
        ("state.status", sample_state(status="exploded")),
        ("state.data['x']", sample_state(data={"x": float("nan")})),
        ("state.data", sample_state(data={"x": {1, 2}})),
        ("state.trace", sample_state(trace=["ok", 3])),
        ("state.output_data['k']", sample_state(output_data={"k": "nul\x00"})),
    ]:
        with pytest.raises(InvalidDataError) as caught:
            await store.save_state(run.run_id, state)
        assert caught.value.field.startswith(field)
    with pytest.raises(InvalidDataError):
        await store.save_state(run.run_id, {"workflow_name": "x"})  # type: ignore[arg-type]
    assert await store.export_data() == before


async def test_multi_megabyte_state(store: DataStorage) -> None:
    run = await start(store)
    big = sample_state(
        data={"blob": "x" * 3_000_000, "rows": [{"i": i, "t": "é" * 10} for i in range(20_000)]}
    )
    await store.save_state(run.run_id, big)
    assert await store.load_state(run.run_id) == big


def test_workflow_state_json_round_trip_and_errors() -> None:
    state = sample_state()
    assert WorkflowState.from_json(state.to_json()) == state
    assert WorkflowState.from_json(WorkflowState("w").to_json()) == WorkflowState("w")
    with pytest.raises(InvalidDataError) as caught:
        WorkflowState.from_json("{not json")
    assert caught.value.field == "state"
    with pytest.raises(InvalidDataError) as caught:
        WorkflowState.from_json('{"workflow_name": "w", "status": "bogus"}')
    assert caught.value.field == "state.status"
    with pytest.raises(InvalidDataError) as caught:
        WorkflowState.from_json('{"workflow_name": "w", "surprise": 1}')
    assert "surprise" in str(caught.value)
    with pytest.raises(InvalidDataError):
        WorkflowState("w", status="done")  # type: ignore[arg-type]
    assert WorkflowState("w").status == "pending"
