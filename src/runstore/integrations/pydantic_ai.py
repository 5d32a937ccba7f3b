"""pydantic-ai message history in any runstore store (``runstore[pydantic-ai]``).

    history = RunstoreMessageHistory(store, "chat-42")
    result = await agent.run(prompt, message_history=await history.load(limit=40))
    await history.save(result.new_messages())

Each ``ModelMessage`` is one runstore message: its ``ModelMessagesTypeAdapter`` JSON is the
message's ``metadata``, ``role`` is ``request`` or ``response``, ``content`` its text parts (for
the store's own tools), ``token_count`` the response's output tokens when the model reported
them (or what ``count_tokens`` says). ``save`` appends a list in one atomic store call.

``load(limit=..., max_tokens=...)`` returns the newest messages that fit, and then makes the
window start at a user request that carries no tool return: a window never begins with a tool
return whose call was cut off (model providers reject that), nor with a model response. So it
may hold fewer messages than ``limit``; it never holds more. A message without a token count
counts 0 toward ``max_tokens`` (the store's rule).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic_ai.messages import (
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelResponse,
    RetryPromptPart,
    TextPart,
    ToolReturnPart,
    UserPromptPart,
)

from .. import ChatMsg, DataStorage
from ._conversation import Conversation

__all__ = ["RunstoreMessageHistory", "starts_cleanly", "window_start"]


def output_tokens(message: ModelMessage) -> int | None:
    """The default token count: what the model reported producing, for a response."""
    if isinstance(message, ModelResponse) and message.usage.output_tokens:
        return message.usage.output_tokens
    return None


def _text(message: ModelMessage) -> str | None:
    if isinstance(message, ModelRequest):
        texts = [p.content for p in message.parts if isinstance(p, UserPromptPart)]
    else:
        texts = [p.content for p in message.parts if isinstance(p, TextPart)]
    strings = [text for text in texts if isinstance(text, str)]
    return "\n".join(strings) if strings else None


def starts_cleanly(message: ModelMessage) -> bool:
    """Whether a history may begin with ``message``: a request that answers no tool call."""
    return isinstance(message, ModelRequest) and not any(
        isinstance(part, ToolReturnPart)
        or (isinstance(part, RetryPromptPart) and part.tool_name is not None)
        for part in message.parts
    )


def window_start(messages: Sequence[ModelMessage]) -> int:
    """The index of the first message a window of ``messages`` may start with
    (``len(messages)`` when none may)."""
    return next((i for i, m in enumerate(messages) if starts_cleanly(m)), len(messages))


class RunstoreMessageHistory:
    """The message history of one conversation (a runstore session). The store is not closed
    by it. The session is created on the first ``save`` (one run of agent ``workflow_name``);
    a session that exists already is used as it is."""

    def __init__(
        self,
        store: DataStorage,
        session_id: str,
        *,
        workflow_name: str = "pydantic-ai",
        external_id: str | None = None,
        count_tokens: Callable[[ModelMessage], int | None] = output_tokens,
    ) -> None:
        self.store = store
        self.session_id = session_id
        self.workflow_name = workflow_name
        self.external_id = external_id
        self.count_tokens = count_tokens
        self._conversation = Conversation(store, session_id, workflow_name, external_id)

    def _message(self, message: ModelMessage) -> ChatMsg:
        [data] = ModelMessagesTypeAdapter.dump_python([message], mode="json")
        return ChatMsg(
            message.kind, _text(message), metadata=data, token_count=self.count_tokens(message)
        )

    async def save(self, messages: Sequence[ModelMessage]) -> None:
        """Append ``messages`` (e.g. ``result.new_messages()``), all or nothing."""
        if not messages:
            return
        await self._conversation.append([self._message(message) for message in messages])

    async def load(
        self, *, limit: int | None = None, max_tokens: int | None = None
    ) -> list[ModelMessage]:
        """The newest messages (at most ``limit``, token counts at most ``max_tokens``), oldest
        first, starting at a request that answers no tool call."""
        history = await self.store.get_chat_history(
            self.session_id, limit=limit, max_tokens=max_tokens
        )
        data: list[Any] = [m.metadata for m in history if m.metadata is not None]
        messages = ModelMessagesTypeAdapter.validate_python(data)
        return messages[window_start(messages) :]

    async def clear(self) -> None:
        """Remove every message (the runstore session stays)."""
        await self._conversation.clear()
