"""examples/adk_agent.py: two turns, the second resumed from a reopened SQLite store."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

from runstore import SqliteDataStorage
from runstore.integrations.adk import RunstoreSessionService

EXAMPLE = Path(__file__).parents[3] / "examples" / "adk_agent.py"


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("adk_agent", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example


TURNS = [
    "Turn 1: you said 'Hi, I am Ada.'; first you said 'Hi, I am Ada.'.",
    "Turn 2: you said 'What is my name?'; first you said 'Hi, I am Ada.'.",  # turn 1, read back
]


async def test_in_memory_by_default_turn_two_is_given_turn_one() -> None:
    lines = await load_example().main(None)
    assert lines == [*TURNS, "the session holds 4 events, in memory (pass a file path to keep it)"]


async def test_with_a_path_two_turns_resumed_after_reopening_and_a_second_run_continues(
    tmp_path: Path,
) -> None:
    example = load_example()
    path = str(tmp_path / "agent.db")
    assert await example.main(path) == [
        *TURNS,
        f"the session holds 4 events, in {path}, reopened for each turn",
    ]
    async with SqliteDataStorage(path) as store:
        service = RunstoreSessionService(store)
        session = await service.get_session(
            app_name="assistant", user_id="ada", session_id="chat-1"
        )
        assert session is not None
        assert [e.author for e in session.events] == ["user", "assistant", "user", "assistant"]
        assert session.state["user:name"] == "Ada"
    assert await example.main(path) == [
        f"continued an existing conversation of 4 events in {path}",
        "Turn 3: you said 'Hi, I am Ada.'; first you said 'Hi, I am Ada.'.",
        "Turn 4: you said 'What is my name?'; first you said 'Hi, I am Ada.'.",
        f"the session holds 8 events, in {path}, reopened for each turn",
    ]


def test_import_runstore_loads_no_framework() -> None:
    check = (
        "import sys, runstore, runstore.integrations; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'google', 'langgraph'}))"
    )
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
