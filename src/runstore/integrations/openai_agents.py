"""Session memory for the OpenAI Agents SDK on any runstore store (``runstore[openai-agents]``).

``RunstoreSession(session_id, store)`` is an ``agents.memory.SessionABC``: pass it as
``Runner.run(agent, input, session=...)``. Each conversation item is one runstore message: the
item itself (a JSON object) is the message's ``metadata``; ``role`` is the item's role (or its
type) and ``content`` its text when it has one, so the store's own tools show the chat. Text is
kept once: when ``content`` holds the item's text, the metadata's ``"content"`` is null (an item
stored with its text in both reads the same).

Every operation is one store call: ``add_items`` is ``add_chat_messages`` (all or nothing),
``pop_item`` is ``pop_message``, ``clear_session`` is ``truncate_history``; compaction
(``OpenAIResponsesCompactionSession``) replaces the newest items with ``replace_history(...,
if_newest_seq=...)``, a compare-and-swap that fails when the history changed since it was read.
With a TTL (``EncryptedSession``) the same call also drops the expired oldest items
(``drop_through_seq``), found by paging forward with ``get_chat_history_after``.

The runstore session is created on the first write, as a session of the agent
``workflow_name`` (by ``initialize_run``, which also records one run). A session that exists
already (of any agent) is used as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, cast

from agents.items import TResponseInputItem
from agents.memory.session import SessionABC, _await_mutation, _CompactionSnapshot
from agents.memory.session_settings import (
    SessionSettings,
    coerce_session_settings,
    resolve_session_limit,
)

from .. import ChatMsg, DataStorage, NotFoundError
from ._conversation import Conversation

__all__ = ["RunstoreSession"]

_T = TypeVar("_T")


def item_message(item: TResponseInputItem) -> ChatMsg:
    """The runstore message that stores one conversation item."""
    fields = cast(dict[str, Any], item)
    role = fields.get("role") or fields.get("type") or "item"
    content = fields.get("content")
    if not isinstance(content, str):
        return ChatMsg(role if isinstance(role, str) else "item", None, metadata=fields)
    # The text is the message's content: the metadata keeps the key (its place in the item)
    # with null, so the text is stored, written and parsed once.
    stored = {**fields, "content": None}
    return ChatMsg(role if isinstance(role, str) else "item", content, metadata=stored)


def message_item(message: ChatMsg) -> TResponseInputItem | None:
    """The item a message stores (None: the message has none), its text put back."""
    fields = message.metadata
    if fields is not None and message.content is not None and fields.get("content", 0) is None:
        fields["content"] = message.content  # a fresh dict: reads never alias stored data
    return cast("TResponseInputItem | None", fields)  # a string: no Union built per call


def _items(messages: list[ChatMsg]) -> list[TResponseInputItem]:
    """The items of messages this session wrote (messages without an item are skipped)."""
    return [item for item in map(message_item, messages) if item is not None]


async def _mutation(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """``_await_mutation(coroutine)`` (the outcome despite the caller's cancellation) without
    its task when the store finishes without waiting (memory, sqlite3): the coroutine is run
    here up to its first wait; only one that waits is handed to ``_await_mutation``."""
    try:
        waiting = coroutine.send(None)
    except StopIteration as done:
        return cast(_T, done.value)
    return await _await_mutation(_resumed(coroutine, waiting))


async def _resumed(coroutine: Coroutine[Any, Any, _T], waiting: Any) -> _T:
    """The rest of a coroutine that yielded ``waiting`` (an asyncio future, or None for a
    bare yield), driven as a task drives it."""
    while True:
        if waiting is None:
            await asyncio.sleep(0)
        else:
            await asyncio.wait({waiting})
        try:
            waiting = coroutine.send(None)
        except StopIteration as done:
            return cast(_T, done.value)


class RunstoreSession(SessionABC):
    """An OpenAI Agents session kept in a runstore store (memory, SQLite, PostgreSQL, the
    browser store). The store is not closed by the session."""

    def __init__(
        self,
        session_id: str,
        store: DataStorage,
        *,
        workflow_name: str = "openai-agents",
        external_id: str | None = None,
        session_settings: SessionSettings | dict[str, Any] | None = None,
    ) -> None:
        self.session_id = session_id
        self.store = store
        self.workflow_name = workflow_name
        self.external_id = external_id
        self.session_settings = (
            coerce_session_settings(session_settings)
            if session_settings is not None
            else SessionSettings()
        )
        self._conversation = Conversation(store, session_id, workflow_name, external_id)

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The newest ``limit`` items (default: ``session_settings.limit``, else all), oldest
        first."""
        count = resolve_session_limit(limit, self.session_settings)
        if count is not None and count < 0:
            count = None  # as SQLiteSession: a negative limit means no limit
        if count == 0:
            return []
        return _items(await self.store.get_chat_history(self.session_id, limit=count))

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append ``items`` in one atomic store call."""
        if not items:
            return
        messages = [item_message(item) for item in items]
        await _mutation(self._conversation.append(messages))

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove and return the newest item (``None`` when there is none)."""
        return await _mutation(self._pop())

    async def _pop(self) -> TResponseInputItem | None:
        try:
            message = await self.store.pop_message(self.session_id)
        except NotFoundError:
            return None
        return None if message is None else message_item(message)

    async def clear_session(self) -> None:
        """Remove every item (the runstore session and its runs stay)."""
        await _mutation(self._conversation.clear())

    async def _get_compaction_snapshot(
        self,
        limit: int,
        *,
        prune_prefix: Callable[[TResponseInputItem], bool] | None = None,
    ) -> _CompactionSnapshot | None:
        """The newest ``limit`` items and an atomic ``replace_suffix`` (the compaction
        interface upstream sessions offer). With ``prune_prefix`` (``EncryptedSession``'s
        "expired"), ``replace_suffix`` also removes the oldest items for which it is true, up
        to the first for which it is not, in the same compare-and-swap."""
        if limit <= 0:
            return None
        read = await self.store.get_chat_history(self.session_id, limit=limit + 1)
        complete = len(read) <= limit
        window = read[-limit:]
        if any(message.metadata is None for message in window):
            return None

        async def replace_suffix(start: int, output: list[TResponseInputItem]) -> bool:
            expected = window[start:]
            if not expected:
                return False
            first, newest = expected[0].seq, expected[-1].seq
            assert first is not None and newest is not None
            drop = None
            if prune_prefix is not None:
                drop = await self._prunable_through(first, limit, prune_prefix)
            try:
                replaced = await self.store.replace_history(
                    self.session_id,
                    after_seq=first - 1,
                    messages=[item_message(item) for item in output],
                    if_newest_seq=newest,
                    drop_through_seq=drop,
                )
            except NotFoundError:
                return False
            return replaced is not None

        return _CompactionSnapshot(_items(window), complete, replace_suffix)

    async def _prunable_through(
        self, before_seq: int, page_size: int, prune: Callable[[TResponseInputItem], bool]
    ) -> int | None:
        """The seq of the last item of the leading run of items older than ``before_seq`` that
        ``prune`` accepts (None: none), read oldest first in pages of ``page_size``. Messages
        are immutable and seqs never reused, so dropping through it later removes only these
        items (or fewer, if some are gone meanwhile)."""
        through = None
        after = 0
        while True:
            page = await self.store.get_chat_history_after(
                self.session_id, after_seq=after, limit=page_size
            )
            for message in page:
                assert message.seq is not None
                item = message_item(message)
                if message.seq >= before_seq or item is None or not prune(item):
                    return through
                through = message.seq
            if len(page) < page_size or through is None:
                return through
            after = through
