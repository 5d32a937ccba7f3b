"""search_messages: the matching rule, the order, the filters, and the index following every
change (docs/contract.md, "Search")."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from helpers import say, snapshot, start

from runstore import ChatMsg, DataStorage, InvalidDataError, SearchHit


def found(hits: list[SearchHit]) -> list[str | None]:
    return [hit.message.content for hit in hits]


async def test_whole_words_case_and_unicode_forms(store: DataStorage) -> None:
    run = await start(store)
    await say(store, run, "The cat sat.")
    await say(store, run, "Concatenate cats")
    await say(store, run, "CAT-like; Straße")
    await say(store, run, "Cafe\u0301 au lait")  # e + combining acute: NFC is "Café"
    assert found(await store.search_messages("cat")) == ["CAT-like; Straße", "The cat sat."]
    assert found(await store.search_messages("CATS")) == ["Concatenate cats"]
    assert found(await store.search_messages("conc")) == []  # a partial word does not match
    assert found(await store.search_messages("STRASSE")) == ["CAT-like; Straße"]  # casefold
    assert found(await store.search_messages("café")) == ["Cafe\u0301 au lait"]
    assert found(await store.search_messages("CAFÉ")) == ["Cafe\u0301 au lait"]


async def test_scripts_without_spaces_match_by_substring(store: DataStorage) -> None:
    run = await start(store)
    await say(store, run, "東京都に住んでいます")
    await say(store, run, "京都へ行きました")
    await say(store, run, "ภาษาไทยง่าย")
    assert found(await store.search_messages("東京")) == ["東京都に住んでいます"]
    assert found(await store.search_messages("京都")) == [
        "京都へ行きました",
        "東京都に住んでいます",
    ]
    assert found(await store.search_messages("京")) == ["京都へ行きました", "東京都に住んでいます"]
    assert found(await store.search_messages("大阪")) == []
    assert found(await store.search_messages("ไทย")) == ["ภาษาไทยง่าย"]
    assert found(await store.search_messages("東京タワー")) == []  # the whole run, not a part


async def test_ranked_by_query_words_then_newest_first(store: DataStorage) -> None:
    run = await start(store)
    await say(store, run, "red apple")  # 1
    await say(store, run, "green apple pie")  # 2
    await say(store, run, "red green apple")  # 3
    await say(store, run, "nothing here")  # 4
    await say(store, run, "apple")  # 5
    hits = await store.search_messages("Red apple, green!")
    assert [(h.message.seq, h.score) for h in hits] == [(3, 3), (2, 2), (1, 2), (5, 1)]
    assert [h.message.seq for h in await store.search_messages("apple apple")] == [5, 3, 2, 1]
    assert [h.message.seq for h in await store.search_messages("apple", limit=2)] == [5, 3]
    assert await store.search_messages("apple", limit=0) == []
    assert len(await store.search_messages("apple", limit=None)) == 4
    assert await store.search_messages("") == []
    assert await store.search_messages(" ,.;!? ") == []


async def test_hits_carry_the_message_and_its_session(store: DataStorage) -> None:
    run = await start(store, external_id="user-1")
    stored = await store.add_chat_message(
        agent_id=run.agent_id,
        session_id=run.session_id,
        run_id=run.run_id,
        role="assistant",
        content="hello there",
        metadata={"k": [1, 2]},
        token_count=3,
    )
    [hit] = await store.search_messages("hello")
    assert hit.message == stored
    assert hit.session == await store.get_session(run.session_id)
    assert hit.score == 1
    assert hit.message.metadata is not None
    hit.message.metadata["k"].append(3)  # a fresh copy: the store is unchanged
    [again] = await store.search_messages("hello")
    assert again.message.metadata == {"k": [1, 2]}


async def test_filters_by_session_agent_and_external_id(store: DataStorage) -> None:
    a1 = await start(store, "a", external_id="u1")
    a2 = await start(store, "a", external_id="u2")
    b1 = await start(store, "b", external_id="u1")
    for run in (a1, a2, b1):
        await say(store, run, f"note for {run.session_id}")
    every = {a1.session_id, a2.session_id, b1.session_id}
    assert {h.session.id for h in await store.search_messages("note")} == every

    async def sessions(**filters: str) -> set[str]:
        return {h.session.id for h in await store.search_messages("note", **filters)}

    assert await sessions(external_id="u1") == {a1.session_id, b1.session_id}
    assert await sessions(agent_id=a1.agent_id) == {a1.session_id, a2.session_id}
    assert await sessions(agent_id=a1.agent_id, external_id="u1") == {a1.session_id}
    assert await sessions(session_id=a2.session_id) == {a2.session_id}
    assert await sessions(session_id=a2.session_id, external_id="u1") == set()
    assert await sessions(external_id="nobody") == set()
    assert await sessions(session_id="unknown") == set()


async def test_the_index_follows_undo_replace_fork_and_deletes(store: DataStorage) -> None:
    run = await start(store, external_id="u")
    for word in ("alpha", "beta", "gamma", "delta"):
        await say(store, run, word)
    assert found(await store.search_messages("alpha beta gamma delta")) == [
        "delta",
        "gamma",
        "beta",
        "alpha",
    ]
    await store.pop_message(run.session_id)
    assert found(await store.search_messages("delta")) == []
    await store.truncate_history(run.session_id, after_seq=2)
    assert found(await store.search_messages("gamma")) == []
    fork = await store.fork_session(run.session_id, through_seq=1)
    # The copy has the same created_at and seq: the session id (descending) breaks the tie.
    assert [h.session.id for h in await store.search_messages("alpha")] == sorted(
        [run.session_id, fork.id], reverse=True
    )
    await store.replace_history(
        run.session_id, after_seq=1, messages=[ChatMsg("user", "epsilon")], drop_through_seq=1
    )
    assert [h.session.id for h in await store.search_messages("alpha")] == [fork.id]
    assert found(await store.search_messages("beta")) == []
    assert found(await store.search_messages("epsilon")) == ["epsilon"]
    await store.add_chat_messages(fork.id, [ChatMsg("user", "zeta epsilon")])
    assert found(await store.search_messages("epsilon zeta")) == ["zeta epsilon", "epsilon"]
    await store.delete_session(fork.id)
    assert found(await store.search_messages("alpha zeta")) == []
    await store.delete_sessions(external_id="u")
    assert await store.search_messages("epsilon") == []
    # A session id used again starts from seq 1: the old messages do not come back.
    again = await start(store, session_id=run.session_id)
    await say(store, again, "omega")
    assert found(await store.search_messages("alpha beta omega epsilon")) == ["omega"]
    await store.delete_agent("chat")
    assert await store.search_messages("omega") == []


async def test_the_index_follows_purge_and_import(store: DataStorage) -> None:
    run = await start(store)
    await say(store, run, "kept words")
    document = await store.export_data()
    assert await store.purge_sessions(datetime(9000, 1, 1, tzinfo=UTC)) == 1
    assert await store.search_messages("kept") == []
    await store.import_data(document)
    [hit] = await store.search_messages("words")
    assert hit.message.content == "kept words" and hit.session.id == run.session_id


async def test_newest_first_across_sessions(store: DataStorage) -> None:
    one, two = await start(store), await start(store)
    await say(store, one, "same")
    await say(store, two, "same")
    hits = await store.search_messages("same")
    assert [h.session.id for h in hits] == [two.session_id, one.session_id]  # newest first


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"query": None}, "query"),
        ({"query": b"x"}, "query"),
        ({"query": "x", "limit": -1}, "limit"),
        ({"query": "x", "limit": "3"}, "limit"),
        ({"query": "x", "external_id": 3}, "external_id"),
        ({"query": "x", "agent_id": ""}, "agent_id"),
        ({"query": "x", "session_id": "a\x00b"}, "session_id"),
    ],
)
async def test_bad_arguments_are_refused(
    store: DataStorage, arguments: dict[str, object], field: str
) -> None:
    run = await start(store)
    await say(store, run, "x")
    before = await snapshot(store)
    with pytest.raises(InvalidDataError) as raised:
        await store.search_messages(**arguments)  # type: ignore[arg-type]
    assert raised.value.field == field
    assert await snapshot(store) == before
