"""erase(user) on the durable browser store (docs/contract.md, "Erasure"), read raw: after
``store.erase("user-x")`` no text of user x is in any record of any IndexedDB object store of
the page's origin (read from JavaScript, every database, every store, keys and values, base64
blobs decoded), after the erase, after more writes and a compaction, and after the store is
closed and opened again; user y's data reads back the same through the store API, is present
raw, and takes new writes. It fails if ``erase`` leaves the log's records of x in IndexedDB.

The frameworks cannot run in Pyodide (LangGraph needs ormsgpack, ADK needs grpc and more), so
the data is written with the very store calls the adapters make, in their scopes and key
layouts: RunstoreSaver (``langgraph``: a channel value stored apart, its checkpoint, a pending
write, all owned, bytes as the serialiser makes them), RunstoreSessionService (``adk``: the
session entry put ``only_if_absent``, user and app state merged, each event one
``write_entries`` with ``expect``), RunstoreMemoryService (a session per event under
``adk-memory/{app}``, ``external_id`` the user, the event's text as the message; a deleted
memory's tombstone, owned), RunstoreStore (``langgraph-store``: an item of the user's
namespace, owned) and the OpenAI Agents / pydantic-ai conversations (a session with
``external_id``, ``add_chat_messages``).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from conftest import Profile, Tab

X, Y = "user-x", "user-y"
# Every text of a user carries their word; BLOB is only in bytes (entries' ``data``), so
# finding it raw before the erase shows that the base64 the log keeps bytes in is decoded.
WORD = {X: "zanzibarquill", Y: "marmotyellow"}
BLOB = {X: "xbinaryonly", Y: "ybinaryonly"}
NOTHING = {  # what ``view`` shows of an erased user
    "records": [],
    "chat": [],
    "memory": [],
    "state": None,
    "langgraph": [None, []],
    "store": [],
    "tombstones": [],
    "adk": [None, [], None],
}

SETUP = """
import hashlib, json
from runstore import ChatMsg, EntryPatch, NewEntry, WorkflowState
from runstore.browser import open_store

SEP = "\\x1f"
SCOPES = ("adk", "adk-memory", "langgraph", "langgraph-store")
UPDATED = SEP + "t"
WORD = WORD_MAP
BLOB = BLOB_MAP
store = await open_store("erasure")


def micros(ts):
    return f"{int(ts * 1_000_000):020d}"


async def conversation(user):
    # OpenAI Agents / pydantic-ai (integrations/_conversation.py): initialize_run, then
    # add_chat_messages; a run's state and output too.
    word = WORD[user]
    run = await store.initialize_run(workflow_name="assistant", session_id="chat-" + user,
                                     external_id=user, input_data={"text": word + " asks"},
                                     session_metadata={"title": word + " title"})
    await store.add_chat_messages("chat-" + user, [
        ChatMsg(role="user", content=word + " question", metadata={"type": "message"}),
        ChatMsg(role="assistant", content=word + " answer", token_count=3),
    ])
    await store.update_run(run.run_id, output_data={"text": word + " done"})
    state = WorkflowState("assistant", status="completed")
    state.data = {"note": word + " note"}
    await store.save_state(run.run_id, state)


async def adk_memory(user):
    # RunstoreMemoryService.add_events_to_memory: a session per event, the text a message.
    word, event_id = WORD[user], "mem-" + user
    session_id = "adk-memory-" + hashlib.sha256(
        json.dumps(["app", user, event_id]).encode()).hexdigest()
    run = await store.initialize_run(workflow_name="adk-memory/app", session_id=session_id,
                                     external_id=user)
    text = word + " remembered"
    await store.add_chat_message(
        agent_id=run.agent_id, session_id=session_id, run_id=None, role="memory",
        content=text, idempotency_key=event_id,
        metadata={"id": event_id, "author": "user", "timestamp": 1.5,
                  "content": {"role": "user", "parts": [{"text": text}]}})


def adk_keys(user):
    session = f"s{SEP}app{SEP}{user}{SEP}session-{user}"
    return session, f"u{SEP}app{SEP}{user}", "e" + session[1:] + SEP


async def adk_append(user, turn, version):
    # RunstoreSessionService.append_event: one write_entries, only at the version read.
    word = WORD[user]
    session, user_state, events = adk_keys(user)
    ts = 1_700_000_000.0 + turn
    event = {"id": f"ev{turn}", "invocation_id": "inv-1", "author": "user",
             "content": {"role": "user", "parts": [{"text": f"{word} event {turn}"}]},
             "actions": {"state_delta": {"user:name": word + " name", "app:n": turn}},
             "timestamp": ts}
    written = await store.write_entries("adk", [
        EntryPatch(session, {UPDATED: ts}, owner=user),
        NewEntry(f"{events}{micros(ts)}{SEP}ev{turn}", event, owner=user),
        EntryPatch(f"a{SEP}app", {"n": turn}),
        EntryPatch(user_state, {"name": word + " name"}, owner=user),
    ], expect={session: version})
    assert written is not None
    return written[0].version


async def adk(user):
    # RunstoreSessionService.create_session, then three events.
    session, user_state, _ = adk_keys(user)
    assert await store.put_entries("adk", [NewEntry(
        session, {"note": WORD[user] + " state", UPDATED: 1_700_000_000.0}, owner=user)],
        only_if_absent=True) == 1
    await store.merge_entry("adk", user_state, {"name": WORD[user] + " name"}, owner=user)
    version = (await store.get_entry("adk", session)).version
    for turn in range(3):
        version = await adk_append(user, turn, version)


def serialised(user, text):
    # what the serialiser makes of a message: msgpack bytes around the text
    return b"\\x82\\xa4type\\xa5human\\xa7content\\xda\\x00" + (
        f"{text} {BLOB[user]} ").encode() + b"\\x00\\xff"


async def langgraph_turn(user, turn, parent):
    # RunstoreSaver.aput: the messages channel's new version stored apart (a delta), then
    # the checkpoint; aput_writes: the pending write, only_if_absent. Owned by the user
    # (config["configurable"]["user_id"], or the saver's owner).
    thread = "thread-" + user + SEP
    checkpoint_id = f"1ef00000-0000-6000-8000-{turn:012d}"
    version = f"{turn + 1:032d}.0.{turn}"
    previous = None if parent is None else (parent.value["blobs"]["messages"][0])
    item = serialised(user, f"{WORD[user]} turn {turn}")
    channel = NewEntry(
        f"{thread}v{SEP}{SEP}messages{SEP}{version}",
        {"base": f"{1:032d}.0.0", "base_size": 40, "run": 40 * turn, "prev": previous,
         "keep": turn, "items": [["msgpack", len(item)]]},
        item, owner=user)
    run_id = f"run-{user}-{turn}"
    checkpoint = NewEntry(
        f"{thread}c{SEP}{SEP}{checkpoint_id}",
        {"type": "msgpack",
         "metadata": {"source": "loop", "step": turn, "parents": {}, "run_id": run_id,
                      "thread_id": "thread-" + user, "user_id": user},
         "parent": None if parent is None else parent.key.rsplit(SEP, 1)[1],
         "blobs": {"messages": [version, f"{1:032d}.0.0"]}},
        serialised(user, f"{WORD[user]} checkpoint {turn}"), run_id, owner=user)
    await store.put_entries("langgraph", [channel, checkpoint])
    write = NewEntry(
        f"{thread}w{SEP}{SEP}{checkpoint_id}{SEP}task-{turn}{SEP}0",
        {"channel": "messages", "type": "msgpack", "task_path": "~__pregel_pull, agent",
         "idx": 0},
        serialised(user, f"{WORD[user]} reply {turn}"), run_id, owner=user)
    assert await store.put_entries("langgraph", [write], only_if_absent=True) == 1


async def long_term(user):
    # RunstoreStore.put(("memories", user), "preference", value), owned by the user; and
    # RunstoreMemoryService.delete_memory's tombstone, owned by the user.
    await store.put_entries("langgraph-store", [NewEntry(
        f"memories\\x01{user}\\x01\\x01preference", {"text": WORD[user] + " likes tea"},
        owner=user)])
    gone = "adk-memory-" + hashlib.sha256(json.dumps(["app", user, "gone"]).encode()).hexdigest()
    await store.put_entries("adk-memory", [NewEntry("deleted/" + gone, owner=user)])


async def latest_checkpoint(user):
    # RunstoreSaver.aget_tuple: the last key of the thread's checkpoints
    found = await store.list_entries(
        "langgraph", prefix=f"thread-{user}{SEP}c{SEP}{SEP}", reverse=True, limit=1)
    return found[0] if found else None


async def langgraph(user):
    for turn in range(3):
        await langgraph_turn(user, turn, await latest_checkpoint(user))


async def view(user):
    # Everything of the user through the API: the record stream's sessions, runs, messages
    # and owned entries, and the reads each adapter makes.
    records = [r async for r in store.export_records()]
    sessions = {r["id"] for r in records if r["kind"] == "session" and r["external_id"] == user}
    mine = [r for r in records if r.get("owner") == user or r.get("session_id") in sessions
            or r.get("id") in sessions]
    session, user_state, events = adk_keys(user)
    latest = await latest_checkpoint(user)
    thread = await store.list_entries("langgraph", prefix="thread-" + user + SEP)
    adk_session = await store.get_entry("adk", session)
    runs = await store.list_runs("chat-" + user)
    state = await store.load_state(runs[0].id) if runs else None
    [memory_agent] = [a.id for a in await store.list_agents() if a.name == "adk-memory/app"]
    return {
        "records": mine,
        "chat": [m.content for m in await store.get_chat_history("chat-" + user)],
        "memory": [h.message.content for h in await store.search_messages(
            WORD[user], external_id=user, agent_id=memory_agent, limit=None)],
        "state": None if state is None else state.data,
        "langgraph": [None if latest is None else latest.key,
                      [[e.key, e.value, e.data.hex(), e.owner] for e in thread]],
        "store": [[e.key, e.value] for e in await store.list_entries(
            "langgraph-store", prefix=f"memories\\x01{user}\\x01")],
        "tombstones": [e.key for e in await store.list_entries("adk-memory") if e.owner == user],
        "adk": [None if adk_session is None else [adk_session.value, adk_session.version],
                [e.value for e in await store.list_entries("adk", prefix=events)],
                None if (u := await store.get_entry("adk", user_state)) is None else u.value],
    }
"""

WRITE = """
for user in ("user-x", "user-y"):
    await conversation(user)
    await adk_memory(user)
    await adk(user)
    await langgraph(user)
    await long_term(user)
json.dumps({"x": await view("user-x"), "y": await view("user-y")})
"""

ERASE = """
report = await store.erase("user-x")
json.dumps({"report": [report.sessions, report.runs, report.messages, report.entries],
            "x": await view("user-x"), "y": await view("user-y"),
            "owners": sorted({str(e.owner) for scope in SCOPES
                              for e in await store.list_entries(scope)}),
            "app": (await store.get_entry("adk", f"a{SEP}app")).value,
            "search": len(await store.search_messages(WORD["user-x"], limit=None))})
"""

# y goes on after the erase: a new LangGraph checkpoint from the latest one read back, an
# ADK event appended at the session's version read back; then the log is folded again.
GO_ON = """
await langgraph_turn("user-y", 3, await latest_checkpoint("user-y"))
await adk_append("user-y", 3, (await store.get_entry("adk", adk_keys("user-y")[0])).version)
await store.compact()
json.dumps(await view("user-y"))
"""

REOPEN = """
await store.close()
store = await open_store("erasure")
json.dumps({"x": await view("user-x"), "y": await view("user-y")})
"""

# Every record of every object store of every IndexedDB database of the origin, raw.
RAW_INDEXED_DB = """async () => {
  const done = (request) => new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const text = (value) => {
    if (typeof value === "string") return value;
    if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
      return new TextDecoder("utf-8").decode(value);
    }
    return JSON.stringify(value);
  };
  const found = {};
  for (const { name } of await indexedDB.databases()) {
    const db = await done(indexedDB.open(name));
    found[name] = {};
    for (const storeName of db.objectStoreNames) {
      const store = db.transaction(storeName, "readonly").objectStore(storeName);
      const [keys, values] = await Promise.all([done(store.getAllKeys()), done(store.getAll())]);
      found[name][storeName] = keys.map((key, i) => [text(key), text(values[i])]);
    }
    db.close();
  }
  return found;
}"""
BASE64 = re.compile(r"[A-Za-z0-9+/]{8,}={0,2}")


def raw_text(tab: Tab) -> tuple[str, dict[str, dict[str, int]]]:
    """All keys and values of the origin's IndexedDB as one text, with every base64 run
    decoded next to it; and the record count per database and object store."""
    databases: dict[str, dict[str, list[list[str]]]] = tab.page.evaluate(RAW_INDEXED_DB)
    parts: list[str] = []
    for stores in databases.values():
        for records in stores.values():
            for key, value in records:
                parts += (key, value)
                for run in BASE64.findall(value):
                    try:
                        decoded = base64.b64decode(run, validate=True)
                    except (binascii.Error, ValueError):
                        continue
                    parts.append(decoded.decode("utf-8", "replace"))
    counts = {
        db: {name: len(rows) for name, rows in stores.items()} for db, stores in databases.items()
    }
    return "\n".join(parts), counts


def assert_no_trace_of_x(tab: Tab) -> None:
    raw, counts = raw_text(tab)
    for text in (WORD[X], BLOB[X], X, "thread-user-x"):
        assert text not in raw, f"{text!r} is still in IndexedDB {counts}"
    assert counts["runstore:erasure"]["snapshot"] == 1, counts
    for text in (WORD[Y], BLOB[Y], Y):
        assert text in raw


def test_erase_leaves_no_record_of_the_user_in_indexed_db(profile: Profile) -> None:
    tab = profile.tab()
    setup = SETUP.replace("WORD_MAP", repr(WORD)).replace("BLOB_MAP", repr(BLOB))
    written: dict[str, Any] = tab.run(setup + WRITE)
    for user in (X, Y):
        view = written["x" if user == X else "y"]
        assert view["chat"] == [f"{WORD[user]} question", f"{WORD[user]} answer"]
        assert view["memory"] == [f"{WORD[user]} remembered"]
        assert len(view["langgraph"][1]) == 9 and len(view["adk"][1]) == 3
        assert len(view["store"]) == 1 and len(view["tombstones"]) == 1
    raw, _ = raw_text(tab)
    for user in (X, Y):  # the log holds both users' words, bytes included
        assert WORD[user] in raw and BLOB[user] in raw

    erased = tab.run(ERASE)
    # x: two sessions (conversation, memory) with their run(s) and three messages; entries:
    # 9 LangGraph, 5 ADK (session, three events, user state), a LangGraph store item and an
    # ADK memory tombstone.
    assert erased["report"] == [2, 2, 3, 16]
    assert erased["x"] == NOTHING
    assert erased["y"] == written["y"]
    assert erased["owners"] == ["None", Y] and erased["app"] == {"n": 2} and erased["search"] == 0
    assert_no_trace_of_x(tab)

    # y goes on: a new checkpoint after the latest, an event at the read version
    going_on = tab.run(GO_ON)
    assert going_on["langgraph"][0].endswith("1ef00000-0000-6000-8000-000000000003")
    assert [e["content"]["parts"][0]["text"] for e in going_on["adk"][1]][-1] == (
        f"{WORD[Y]} event 3"
    )
    assert_no_trace_of_x(tab)

    # Closed and opened again (in this page: a reload would boot Pyodide again), the store
    # is what IndexedDB holds: y whole, nothing of x.
    reopened = tab.run(REOPEN)
    assert reopened["y"] == going_on and reopened["x"] == NOTHING
    assert_no_trace_of_x(tab)
