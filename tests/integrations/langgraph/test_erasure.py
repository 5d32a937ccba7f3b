"""erase(user) on a LangGraph store (docs/contract.md, "Erasure"): the checkpoints and writes
of the user's threads are owned by the user (``config["configurable"]["user_id"]``, or the
saver's ``owner``), so after ``store.erase`` no text of the user is left in any table, entry
or export, while another user's thread resumes where it stopped. On every backend."""

from __future__ import annotations

from pathlib import Path

from backends import FACTORIES
from graphs import chat_graph, user
from integrations.erasure import stored_texts

from runstore.integrations.langgraph import RunstoreSaver


async def test_erase_removes_one_users_threads_and_keeps_anothers(
    backend: str, tmp_path: Path
) -> None:
    store = await FACTORIES[backend](tmp_path)
    try:
        by_config = chat_graph(RunstoreSaver(store))
        by_saver = chat_graph(RunstoreSaver(store, owner="user-y"))
        x = {"configurable": {"thread_id": "thread-x", "user_id": "user-x"}}
        y = {"configurable": {"thread_id": "thread-y"}}
        for turn in range(3):
            await by_config.ainvoke(user(f"x-secret-{turn} " + "s" * 300, turn), x)
            await by_saver.ainvoke(user(f"y-words-{turn} " + "w" * 300, turn), y)
        assert "x-secret-2" in await stored_texts(store, ["langgraph"])
        report = await store.erase("user-x")
        assert report.entries > 0 and report.sessions == 0
        left = await stored_texts(store, ["langgraph"])
        assert "x-secret" not in left
        assert "y-words-2" in left
        owners = {e.owner for e in await store.list_entries("langgraph")}
        assert owners == {"user-y"}
        # the other user's thread resumes where it stopped
        out = await by_saver.ainvoke(user("y-words-3", 3), y)
        texts = [m.content for m in out["messages"]]
        assert texts[0].startswith("y-words-0") and texts[-1] == "reply 7 to: y-words-3"
        assert out["turns"] == 4
        # the erased thread starts again from nothing
        again = await by_config.ainvoke(user("x-new", 9), x)
        assert [m.content for m in again["messages"]] == ["x-new", "reply 1 to: x-new"]
    finally:
        await store.close()
