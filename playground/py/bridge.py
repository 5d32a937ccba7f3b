"""What the page's worker calls: open a store, chat, inspect, export/import, run console code.

The worker calls everything through ``call``, which answers JSON text: the operation's result, or
the refusal of a ``StorageError`` (its one-line text, and the traceback for the browser console).
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import inspect
import io
import json
import traceback
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from chat_workflow import EXTERNAL_ID, WORKFLOW_NAME, chat_turn

import runstore
from runstore import DataStorage, InMemoryDataStorage, InvalidDataError, StorageError

PERSISTENT_STORE = "playground"  # runstore.browser's durable store of this origin

store: DataStorage | None = None
mode = "memory"
chat_session_id: str | None = None  # the session the chat panel shows and continues
console_namespace: dict[str, Any] = {}


def _live() -> DataStorage:
    if store is None:
        raise RuntimeError("no store is open")
    return store


async def open_store(new_mode: str) -> dict[str, str]:
    """Open an in-memory store or the durable one (IndexedDB), then close the current one: a
    refused open (the durable store is open in another tab) leaves the current store in use."""
    global store, mode, chat_session_id
    if new_mode == "memory":
        opened: DataStorage = InMemoryDataStorage()
    elif new_mode == "persistent":
        from runstore.browser import open_store  # Pyodide only

        if store is not None and mode == "persistent":  # reopening: let go of our own lock first
            await store.close()
            store = None
        # A reloaded page's old worker may hold the store a moment longer: wait a little;
        # another tab that keeps it open gets StoreLockedError, shown as a refusal.
        opened = await open_store(PERSISTENT_STORE, lock_timeout=3)
    else:
        raise ValueError(f"mode: must be 'memory' or 'persistent', not {new_mode!r}")
    if store is not None:
        await store.close()
    store = opened
    mode = new_mode
    chat_session_id = await _latest_chat_session()
    console_namespace.clear()
    console_namespace.update(
        store=store, runstore=runstore, WorkflowState=runstore.WorkflowState, __name__="__console__"
    )
    return {"mode": mode, "version": runstore.__version__}


async def _latest_chat_session() -> str | None:
    found = await _live().list_sessions(
        workflow_name=WORKFLOW_NAME, external_id=EXTERNAL_ID, limit=1
    )
    return found[0].id if found else None


async def send(text: str) -> dict[str, Any]:
    """One chat turn; continues the chat session, or starts it."""
    global chat_session_id
    turn = await chat_turn(_live(), text, session_id=chat_session_id)
    chat_session_id = turn.session_id
    return {"reply": turn.reply, "turn": turn.turn, "session_id": turn.session_id}


def new_conversation() -> dict[str, str]:
    """The next message starts a new session (same user, same agent)."""
    global chat_session_id
    chat_session_id = str(uuid.uuid4())
    return {"session_id": chat_session_id}


def select_chat_session(session_id: str) -> dict[str, str]:
    global chat_session_id
    chat_session_id = session_id
    return {"session_id": session_id}


async def undo_last_turn() -> dict[str, int]:
    """Remove the chat's newest user message and everything after it (its reply)."""
    live = _live()
    removed = 0
    if chat_session_id is not None and await live.get_session(chat_session_id) is not None:
        history = await live.get_chat_history(chat_session_id, None)
        asked = [m.seq for m in history if m.role == "user" and m.seq is not None]
        if asked:
            removed = await live.truncate_history(chat_session_id, after_seq=asked[-1] - 1)
    return {"removed": removed}


async def fork_from(session_id: str, seq: int) -> dict[str, Any]:
    """A new session holding ``session_id``'s messages up to ``seq``; the chat continues it."""
    global chat_session_id
    fork = await _live().fork_session(session_id, through_seq=seq)
    chat_session_id = fork.id
    return {"session_id": fork.id, "forked_from_seq": fork.forked_from_seq}


async def search(query: str) -> list[dict[str, Any]]:
    """``search_messages`` over every conversation: the best 20 hits."""
    hits = await _live().search_messages(query, limit=20)
    return [
        {"session_id": h.session.id, "score": h.score, **_plain(h.message._asdict())} for h in hits
    ]


async def erase_user() -> dict[str, int]:
    """Forget the playground's user: ``erase`` every session of its external id (runs, states,
    messages) and the entries it owns. The next message starts a new conversation."""
    global chat_session_id
    report = await _live().erase(EXTERNAL_ID)
    chat_session_id = None
    return dataclasses.asdict(report)


async def prune(keep_last: int) -> dict[str, int]:
    """Retention: keep only the newest ``keep_last`` messages of each session (``prune``)."""
    return dataclasses.asdict(await _live().prune(keep_last=keep_last))


def _plain(value: Any) -> Any:
    """Records as JSON-ready dicts (datetimes as ISO text)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _record(record: Any) -> dict[str, Any]:
    return {f.name: _plain(getattr(record, f.name)) for f in dataclasses.fields(record)}


async def snapshot(selected: str | None) -> dict[str, Any]:
    """Agents, sessions (newest activity first), and the selected session's runs + messages."""
    live = _live()
    agents = await live.list_agents()
    sessions = await live.list_sessions(limit=None)
    known = {s.id for s in sessions}
    if selected not in known:
        selected = chat_session_id if chat_session_id in known else None
    if selected is None and sessions:
        selected = sessions[0].id
    runs: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    if selected is not None:
        for run in await live.list_runs(selected):
            state = await live.load_state(run.id)
            runs.append({**_record(run), "state": None if state is None else state.to_dict()})
        for message in await live.get_chat_history(selected, None):
            messages.append(_plain(message._asdict()))
    chat: list[dict[str, Any]] = []
    if chat_session_id in known:
        assert chat_session_id is not None
        chat = [_plain(m._asdict()) for m in await live.get_chat_history(chat_session_id, None)]
    return {
        "mode": mode,
        "stats": dataclasses.asdict(await live.stats()),
        "agents": [_record(a) for a in agents],
        "sessions": [_record(s) for s in sessions],
        "selected": selected,
        "chat_session_id": chat_session_id,
        "runs": runs,
        "messages": messages,
        "chat": chat,
    }


async def export_json() -> str:
    """The export document as the text of the file (JSON keeps every integer exact)."""
    return json.dumps(await _live().export_data(), indent=1)


async def import_json(text: str) -> dict[str, int]:
    """Import an export document; the chat then continues the newest imported conversation."""
    global chat_session_id
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise InvalidDataError("file", f"not a JSON document ({exc})") from None
    await _live().import_data(document)
    if chat_session_id is None or await _live().get_session(chat_session_id) is None:
        chat_session_id = await _latest_chat_session()
    sessions = document.get("sessions", []) if isinstance(document, dict) else []
    return {"sessions": len(sessions)}


async def run_console(code: str) -> dict[str, Any]:
    """Run code against the live ``store`` (top-level ``await`` allowed); the value of a final
    expression is printed like a REPL. Returns the output text and whether it raised."""
    out = io.StringIO()
    failed = False
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            tree = ast.parse(code, "<console>", "exec")
            last = None
            final = tree.body[-1] if tree.body else None
            if isinstance(final, ast.Expr):
                tree.body.pop()
                last = ast.Expression(final.value)
            flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
            compiled = compile(tree, "<console>", "exec", flags=flags)
            result = eval(compiled, console_namespace)
            if compiled.co_flags & inspect.CO_COROUTINE:  # the code awaits
                await result
            if last is not None:
                compiled = compile(last, "<console>", "eval", flags=flags)
                value = eval(compiled, console_namespace)
                if compiled.co_flags & inspect.CO_COROUTINE:
                    value = await value
                if value is not None:
                    print(repr(value))
        except BaseException as exc:  # the user's code: show any error as text
            failed = True
            tb = exc.__traceback__
            while tb is not None and tb.tb_frame.f_code.co_filename != "<console>":
                tb = tb.tb_next  # hide this module's frames
            traceback.print_exception(type(exc), exc, tb)
    return {"output": out.getvalue(), "error": failed}


OPERATIONS: dict[str, Callable[..., Any]] = {
    "open_store": open_store,
    "snapshot": snapshot,
    "send": send,
    "new_conversation": new_conversation,
    "select_chat_session": select_chat_session,
    "undo_last_turn": undo_last_turn,
    "fork_from": fork_from,
    "erase_user": erase_user,
    "search": search,
    "prune": prune,
    "export_json": export_json,
    "import_json": import_json,
    "run_console": run_console,
}


async def call(name: str, arguments: str) -> str:
    """Run operation ``name`` with the JSON list ``arguments``. Answers ``{"result": ...}``, or
    ``{"refused": text, "error": class name, "detail": traceback}`` when the store refused
    (a ``StorageError``: bad input, a missing record, a store open in another tab). Any other
    exception is a bug and propagates: the page shows it as an error."""
    try:
        result = OPERATIONS[name](*json.loads(arguments))
        if inspect.isawaitable(result):
            result = await result
    except StorageError as exc:
        refusal = {"refused": str(exc), "error": type(exc).__name__}
        return json.dumps({**refusal, "detail": traceback.format_exc()})
    return json.dumps({"result": result})
