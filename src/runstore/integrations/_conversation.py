"""The runstore session behind one framework conversation, shared by the adapters."""

from __future__ import annotations

from collections.abc import Sequence

from .. import ChatMsg, DataStorage, NotFoundError


class Conversation:
    """One runstore session, created on the first append (one run of agent ``workflow_name``,
    by ``initialize_run``); a session that exists already is used as it is."""

    def __init__(
        self, store: DataStorage, session_id: str, workflow_name: str, external_id: str | None
    ) -> None:
        self.store = store
        self.session_id = session_id
        self.workflow_name = workflow_name
        self.external_id = external_id
        self._exists = False

    async def _ensure(self) -> None:
        if not self._exists:
            if await self.store.get_session(self.session_id) is None:
                await self.store.initialize_run(
                    workflow_name=self.workflow_name,
                    session_id=self.session_id,
                    external_id=self.external_id,
                )
            self._exists = True

    async def append(self, messages: Sequence[ChatMsg]) -> None:
        """``add_chat_messages``: all or nothing."""
        await self._ensure()
        try:
            await self.store.add_chat_messages(self.session_id, messages)
        except NotFoundError:  # the session was deleted meanwhile: make it again
            self._exists = False
            await self._ensure()
            await self.store.add_chat_messages(self.session_id, messages)

    async def clear(self) -> None:
        """Remove every message; the runstore session and its runs stay."""
        try:
            await self.store.truncate_history(self.session_id, after_seq=0)
        except NotFoundError:
            return
