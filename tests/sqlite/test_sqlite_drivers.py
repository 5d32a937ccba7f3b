"""Choosing the driver, and the sqlite3 driver's promise: no thread, no aiosqlite."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runstore import InvalidDataError, SqliteDataStorage


def run_python(script: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_an_unknown_driver_or_a_path_that_is_not_one_is_refused() -> None:
    with pytest.raises(InvalidDataError) as caught:
        SqliteDataStorage(driver="postgres")
    assert caught.value.field == "driver"
    with pytest.raises(InvalidDataError) as caught:
        SqliteDataStorage(42)  # type: ignore[arg-type]
    assert caught.value.field == "path"


async def test_no_driver_means_aiosqlite_when_it_is_installed(tmp_path: Path) -> None:
    async with SqliteDataStorage(tmp_path / "x.db") as store:
        assert store.driver == "aiosqlite"
        await store.initialize_run(workflow_name="w")


def test_without_aiosqlite_asking_for_it_says_how_to_install_it(tmp_path: Path) -> None:
    output = run_python(
        f"""
        import asyncio, sys
        sys.modules["aiosqlite"] = None  # as if it were not installed
        import runstore
        try:
            runstore.SqliteDataStorage(driver="aiosqlite")
        except ImportError as exc:
            print(exc)
        store = runstore.SqliteDataStorage({str(tmp_path / "x.db")!r})
        print(store.driver)
        asyncio.run(store.initialize_run(workflow_name="w"))
        asyncio.run(store.close())
        """
    )
    message, driver = output.splitlines()
    assert "pip install aiosqlite" in message  # works before runstore is on PyPI
    assert driver == "sqlite3"


def test_sqlite3_driver_needs_no_thread_and_no_event_loop(tmp_path: Path) -> None:
    # Where threads cannot start (Pyodide raises exactly this), the default is sqlite3, and
    # every call completes without suspending: it runs under any event loop, or none.
    output = run_python(
        f"""
        import sys, threading
        def refuse(self):
            raise RuntimeError("can't start new thread")
        threading.Thread.start = refuse
        import runstore

        def finish(coro):
            try:
                coro.send(None)
            except StopIteration as done:
                return done.value
            raise AssertionError("the sqlite3 driver suspended")

        store = runstore.SqliteDataStorage({str(tmp_path / "x.db")!r})
        print(store.driver)
        run = finish(store.initialize_run(workflow_name="w", external_id="u"))
        for i in range(60):
            finish(store.add_chat_message(agent_id=run.agent_id, session_id=run.session_id,
                                          run_id=run.run_id, role="user", content=str(i)))
        newest = finish(store.get_chat_history(run.session_id, 2))
        assert [m.content for m in newest] == ["58", "59"]
        finish(store.save_state(run.run_id, runstore.WorkflowState("w")))
        finish(store.close())
        assert "aiosqlite" not in sys.modules
        print(threading.active_count())
        """
    )
    assert output.splitlines() == ["sqlite3", "1"]


async def test_a_store_never_closed_does_not_keep_the_process_alive(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    run_python(  # raises subprocess.TimeoutExpired if aiosqlite's thread kept it running
        f"""
        import asyncio, runstore
        store = runstore.SqliteDataStorage({str(path)!r}, driver="aiosqlite")
        asyncio.run(store.initialize_run(workflow_name="kept"))
        """
    )
    async with SqliteDataStorage(path, driver="sqlite3") as store:
        assert [agent.name for agent in await store.list_agents()] == ["kept"]
