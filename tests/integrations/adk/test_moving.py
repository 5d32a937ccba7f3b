"""An ADK session moved from SQLite to PostgreSQL by ``python -m runstore copy`` continues where
it stopped: same events and state, and the next turn sees the whole conversation."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from google.genai import types
from pg_server import shared_dsn

from runstore import DataStorage, PostgresDataStorage, SqliteDataStorage

EXAMPLE = Path(__file__).parents[3] / "examples" / "adk_agent.py"


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("adk_agent", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example


async def say(example: Any, store: DataStorage, session_id: str, text: str) -> str:
    app = example.runner(store)
    message = types.Content(role="user", parts=[types.Part(text=text)])
    replies = [
        event.content.parts[0].text
        async for event in app.run_async(user_id="ada", session_id=session_id, new_message=message)
        if event.content and event.content.parts and event.content.parts[0].text
    ]
    return str(replies[-1])


async def read(example: Any, store: DataStorage, session_id: str) -> Any:
    service = example.runner(store).session_service
    return await service.get_session(app_name="assistant", user_id="ada", session_id=session_id)


def copy(source: str, target: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "runstore", "copy", source, target]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


async def test_a_session_moves_from_sqlite_to_postgres(tmp_path: Path) -> None:
    example = load_example()
    async with SqliteDataStorage(tmp_path / "agent.db") as source:
        service = example.runner(source).session_service
        for session_id in ("chat-1", "chat-2"):
            await service.create_session(
                app_name="assistant",
                user_id="ada",
                session_id=session_id,
                state={"user:name": "Ada", "app:tone": "brief", "topic": session_id},
            )
        assert await say(example, source, "chat-1", "Hi, I am Ada.") == (
            "Turn 1: you said 'Hi, I am Ada.'; first you said 'Hi, I am Ada.'."
        )
        before = await read(example, source, "chat-1")

    schema = f"adk_{uuid.uuid4().hex[:12]}"
    target_url = f"{shared_dsn()}{'&' if '?' in shared_dsn() else '?'}schema={schema}"
    done = copy(f"sqlite:///{tmp_path}/agent.db", target_url)
    assert (done.returncode, done.stderr) == (0, "")

    async with PostgresDataStorage(shared_dsn(), schema=schema) as target:
        moved = await read(example, target, "chat-1")
        assert moved == before  # events, state (app:, user: and own) and update time
        assert await say(example, target, "chat-1", "What is my name?") == (
            "Turn 2: you said 'What is my name?'; first you said 'Hi, I am Ada.'."
        )
        after = await read(example, target, "chat-1")
        assert [e.author for e in after.events] == ["user", "assistant"] * 2
        assert after.state["user:name"] == "Ada" and after.state["topic"] == "chat-1"
        other = await read(example, target, "chat-2")
        assert other is not None and other.state["app:tone"] == "brief" and other.events == []
