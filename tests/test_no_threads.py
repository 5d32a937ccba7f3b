"""The in-memory store starts no thread and imports nothing that does (Pyodide has none)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    import runstore
    assert "threading" not in sys.modules, "import runstore pulled in threading"
    assert "asyncio" not in sys.modules, "import runstore pulled in asyncio"

    def finish(coro):
        # No event loop at all: the in-memory store never waits, so one send() completes it.
        try:
            coro.send(None)
        except StopIteration as done:
            return done.value
        raise AssertionError("the in-memory store suspended")

    store = runstore.InMemoryDataStorage()
    run = finish(store.initialize_run(workflow_name="w", external_id="u"))
    for i in range(100):
        finish(store.add_chat_message(agent_id=run.agent_id, session_id=run.session_id,
                                      run_id=run.run_id, role="user", content=str(i)))
    assert len(finish(store.get_chat_history(run.session_id))) == 50
    finish(store.save_state(run.run_id, runstore.WorkflowState("w")))
    finish(store.put_entries("s", [runstore.NewEntry("k", {"a": 1}, b"x")]))
    assert finish(store.merge_entry("s", "k", {"b": 2})).value == {"a": 1, "b": 2}
    assert [e.key for e in finish(store.list_entries("s", prefix="k"))] == ["k"]
    finish(store.close())
    assert "threading" not in sys.modules
    print("ok")
    """
)


def test_in_memory_store_needs_no_thread_and_no_event_loop() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
