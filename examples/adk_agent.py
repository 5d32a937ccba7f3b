"""A Google ADK agent whose sessions live in runstore (SQLite file): two turns, the second
after the store is closed and reopened. Offline: the model is a scripted ``BaseLlm`` that also
reports how many earlier turns it was given, so the test can see the history was reloaded.
Run: python examples/adk_agent.py [path.db]   (needs runstore[adk,sqlite])
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncGenerator
from typing import Any

from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.genai import types

from runstore import SqliteDataStorage
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
        yield LlmResponse(content=types.Content(role="model", parts=[types.Part(text=reply)]))


def runner(store: Any) -> Runner:
    agent = LlmAgent(name="assistant", model=ScriptedModel(), instruction="Be brief.")
    return Runner(app_name=APP, agent=agent, session_service=RunstoreSessionService(store))


async def turn(path: str, text: str) -> str:
    """One turn with a freshly opened store: the session and its history come from the file."""
    async with SqliteDataStorage(path) as store:
        app = runner(store)
        service = app.session_service
        if await service.get_session(app_name=APP, user_id=USER, session_id=SESSION) is None:
            await service.create_session(
                app_name=APP, user_id=USER, session_id=SESSION, state={"user:name": "Ada"}
            )
        message = types.Content(role="user", parts=[types.Part(text=text)])
        replies = [
            event.content.parts[0].text
            async for event in app.run_async(user_id=USER, session_id=SESSION, new_message=message)
            if event.content and event.content.parts and event.content.parts[0].text
        ]
        return str(replies[-1])


async def main(path: str) -> list[str]:
    return [await turn(path, "Hi, I am Ada."), await turn(path, "What is my name?")]


if __name__ == "__main__":
    for line in asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "adk-agent.db")):
        print(line)
