"""examples/adk_agent.py: two turns, the second resumed from a reopened SQLite store."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from runstore import SqliteDataStorage
from runstore.integrations.adk import RunstoreSessionService

EXAMPLE = Path(__file__).parents[3] / "examples" / "adk_agent.py"


async def test_two_turns_resumed_after_reopening(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("adk_agent", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    path = str(tmp_path / "agent.db")
    replies = await example.main(path)
    assert replies == [
        "Turn 1: you said 'Hi, I am Ada.'; first you said 'Hi, I am Ada.'.",
        "Turn 2: you said 'What is my name?'; first you said 'Hi, I am Ada.'.",
    ]
    async with SqliteDataStorage(path) as store:
        service = RunstoreSessionService(store)
        session = await service.get_session(
            app_name="assistant", user_id="ada", session_id="chat-1"
        )
        assert session is not None
        assert [e.author for e in session.events] == ["user", "assistant", "user", "assistant"]
        assert session.state["user:name"] == "Ada"


def test_import_runstore_loads_no_framework() -> None:
    check = (
        "import sys, runstore, runstore.integrations; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'google', 'langgraph'}))"
    )
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
