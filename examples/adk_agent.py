"""A Google ADK agent whose sessions live in runstore: two turns in one session. Offline: the
model is a scripted ``BaseLlm`` that says how many turns it was given and what came first, so
turn 2 shows the history read back from runstore. With a path, the store is a SQLite file,
closed and reopened between the turns (and kept: run it again and the session goes on).

    pip install -e '.[adk,sqlite]'   # from a checkout (README, "Install")
    python examples/adk_agent.py [path.db]   # no path: in memory
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager

from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.genai import types

from runstore import DataStorage, InMemoryDataStorage, SqliteDataStorage
from runstore.integrations.adk import RunstoreSessionService

APP, USER, SESSION = "assistant", "ada", "chat-1"


class ScriptedModel(BaseLlm):
    """Answers from the conversation it is given: no network, no randomness."""

    model: str = "scripted"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        said = [
            part.text
            for content in llm_request.contents
            if content.role == "user"
            for part in content.parts or []
            if part.text
        ]
        reply = f"Turn {len(said)}: you said {said[-1]!r}; first you said {said[0]!r}."
        yield LlmResponse(
            content=types.Content(role="model", parts=[types.Part(text=reply)]),
            usage_metadata=types.GenerateContentResponseUsageMetadata(
                prompt_token_count=len(said),
                candidates_token_count=1,
                total_token_count=len(said) + 1,
            ),
        )


def runner(store: DataStorage) -> Runner:
    agent = LlmAgent(name="assistant", model=ScriptedModel(), instruction="Be brief.")
    return Runner(app_name=APP, agent=agent, session_service=RunstoreSessionService(store))


async def turn(store: DataStorage, text: str) -> str:
    """One turn: the session and its history come from the store."""
    app = runner(store)
    message = types.Content(role="user", parts=[types.Part(text=text)])
    replies = [
        event.content.parts[0].text
        async for event in app.run_async(user_id=USER, session_id=SESSION, new_message=message)
        if event.content and event.content.parts and event.content.parts[0].text
    ]
    return str(replies[-1])


async def events(store: DataStorage) -> int | None:
    """How many events the session holds (None: no session yet)."""
    service = RunstoreSessionService(store)
    session = await service.get_session(app_name=APP, user_id=USER, session_id=SESSION)
    return None if session is None else len(session.events)


@asynccontextmanager
async def opened(path: str | None, memory: DataStorage) -> AsyncIterator[DataStorage]:
    """The store for one turn: the in-memory one (kept open), or the file opened afresh."""
    if path is None:
        yield memory
    else:
        async with SqliteDataStorage(path) as store:
            yield store


async def main(path: str | None) -> list[str]:
    """Two turns on a store in memory, or in the SQLite file ``path``, reopened for each turn.
    Returns the lines it prints."""
    lines: list[str] = []
    async with InMemoryDataStorage() as memory:
        async with opened(path, memory) as store:
            before = await events(store)
            if before is None:
                await RunstoreSessionService(store).create_session(
                    app_name=APP, user_id=USER, session_id=SESSION, state={"user:name": "Ada"}
                )
            else:
                lines.append(f"continued an existing conversation of {before} events in {path}")
            lines.append(await turn(store, "Hi, I am Ada."))
        async with opened(path, memory) as store:
            lines.append(await turn(store, "What is my name?"))
            where = (
                f"{path}, reopened for each turn"
                if path
                else "memory (pass a file path to keep it)"
            )
            lines.append(f"the session holds {await events(store)} events, in {where}")
    return lines


if __name__ == "__main__":
    print("\n".join(asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None))))
