"""runstore.browser in real headless Chromium: the durable store survives reloads, works in a
Web Worker, keeps two tabs from losing anything, takes calls from one event loop after another,
and passes the contract suite.

Started by scripts/test after the Pyodide stage (it needs build/pyodide with the wheel).
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from typing import Any

from conftest import ROOT, Profile, Tab

INNER_ROOT = "/home/pyodide/runstore"
SUITE = [
    "pyproject.toml",
    "tests/conftest.py",
    "tests/backends.py",
    "tests/contract/*.py",
    "tests/browser/webloop_runner.py",
]

WRITE = """
import json
from enum import StrEnum
import runstore
from runstore.browser import open_store

store = await open_store("notes")
ada = await store.initialize_run(workflow_name="tutor", external_id="ada",
                                 input_data={"text": "hi"}, session_metadata={"title": "Ada é"})
for i in range(30):
    await store.add_chat_message(agent_id=ada.agent_id, session_id=ada.session_id,
                                 run_id=ada.run_id, role="user" if i % 2 == 0 else "assistant",
                                 content=f"message {i} é ✓")
await store.update_run(ada.run_id, output_data={"text": "bye"}, duration_seconds=1.5)
state = runstore.WorkflowState("tutor", status="completed", trace=["a", "b"])
state.data = {"n": 1}
await store.save_state(ada.run_id, state)
grace = await store.initialize_run(workflow_name="tutor", external_id="grace")
await store.update_session(grace.session_id, metadata={"tags": ["x"], "n": 7})
await store.add_chat_message(agent_id=grace.agent_id, session_id=grace.session_id,
                             run_id=None, role="user", content="hello")
class Role(StrEnum):  # a subclass of str is kept as its plain value
    ASSISTANT = "assistant"
await store.add_chat_messages(grace.session_id, [
    runstore.ChatMsg(role=Role.ASSISTANT, content="hi"), runstore.ChatMsg(role="user", content="ok")
])
gone = await store.initialize_run(workflow_name="other", external_id="x")
await store.delete_agent("other")
json.dumps(await store.export_data())
"""

READ = """
import json
from runstore.browser import open_store

store = await open_store("notes")
json.dumps(await store.export_data())
"""


def test_written_data_survives_a_reload(profile: Profile) -> None:
    tab = profile.tab()
    written = tab.run(WRITE)
    assert len(written["messages"]) == 33 and [a["name"] for a in written["agents"]] == ["tutor"]
    titles = {s["external_id"]: s["metadata"] for s in written["sessions"]}
    assert titles == {"ada": {"title": "Ada é"}, "grace": {"tags": ["x"], "n": 7}}
    tab.reload()
    assert tab.run(READ) == written
    # The store goes on from where it was: seq and activity order continue.
    more = tab.run(  # the page's ``store`` from READ, still open
        "import json\ns = (await store.list_sessions())[1]\n"  # ada's, the older one
        "m = await store.add_chat_message(agent_id=s.agent_id, session_id=s.id,"
        " run_id=None, role='user', content='after reload')\n"
        "json.dumps([m.seq, [x.external_id for x in await store.list_sessions()]])"
    )
    assert more == [31, ["ada", "grace"]]
    tab.reload()
    assert len(tab.run(READ)["messages"]) == 34


def test_a_call_the_log_cannot_keep_changes_nothing(profile: Profile) -> None:
    """The arguments are encoded for the log before the call changes memory. base.py's checks
    let nothing through that the log refuses, so the hook is called here as a caller's bug
    would."""
    tab = profile.tab()
    code = """
import json
from datetime import UTC, datetime
from runstore import InvalidDataError
from runstore._calls import RunUpdate
from runstore.browser import open_store

store = await open_store("notes")
run = await store.initialize_run(workflow_name="w")
before = await store.export_data()
try:
    await store._update_run(RunUpdate(run.run_id, {"x": {1}}, None, 1.0, datetime.now(UTC)))
    field = None
except InvalidDataError as error:
    field = error.field
unchanged = await store.export_data() == before
await store.update_run(run.run_id, duration_seconds=2.0)  # the store goes on
json.dumps([field, unchanged, await store.export_data()])
"""
    field, unchanged, written = tab.run(code)
    assert field == "update.output_data['x']" and unchanged
    assert written["runs"][0]["duration_seconds"] == 2.0
    tab.reload()
    assert tab.run(READ) == written


def test_a_snapshot_and_the_log_after_it_read_back(profile: Profile) -> None:
    tab = profile.tab()
    written = tab.run(
        WRITE.replace(
            "grace = await",
            "await store.compact()  # a snapshot now, then more log records\ngrace = await",
        )
    )
    tab.reload()
    assert tab.run(READ) == written
    # Opening folds a long log into a snapshot; still the same data.
    tab.reload()
    assert tab.run(READ.replace("json.dumps(", "await store.compact()\njson.dumps(")) == written
    tab.reload()
    assert tab.run(READ) == written


IMPORTED = """
import json
from runstore import InMemoryDataStorage, NewEntry
from runstore.browser import open_store

source = InMemoryDataStorage()
run = await source.initialize_run(workflow_name="moved", session_id="s", external_id="ada")
await source.add_chat_message(agent_id=run.agent_id, session_id="s", run_id=run.run_id,
                              role="user", content="imported é", idempotency_key="k")
await source.put_entries("langgraph", [NewEntry("t/1", {"v": 1}, data=b"\\x00b", owner="ada")])
store = await open_store("notes")
await store.import_records(source.export_records())
await store.put_entries("app", [NewEntry("after", {"n": 2})])
json.dumps([r async for r in store.export_records()])
"""


def test_imported_records_and_entries_survive_a_reload_and_a_snapshot(profile: Profile) -> None:
    """import_records is one logged call; a snapshot keeps the entries."""
    tab = profile.tab()
    written = tab.run(IMPORTED)
    assert [r["kind"] for r in written] == [
        "header", "agent", "session", "run", "message", "entry", "entry",
    ]  # fmt: skip
    read = READ.replace(
        "json.dumps(await store.export_data())",
        "json.dumps([r async for r in store.export_records()])",
    )
    tab.reload()
    assert tab.run(read) == written
    tab.reload()
    assert tab.run(read.replace("json.dumps(", "await store.compact()\njson.dumps(")) == written
    tab.reload()
    assert tab.run(read) == written


def test_a_web_worker_writes_and_the_page_reads_after_a_reload(profile: Profile) -> None:
    tab = profile.tab()
    written = tab.run_in_worker(WRITE)  # the worker keeps the store open: a reload ends it
    tab.reload()
    assert tab.run(READ) == written


def test_two_tabs_on_one_store_lose_nothing(profile: Profile) -> None:
    first, second = profile.tab(), profile.tab()
    opened = """
import json
from runstore.browser import open_store, StoreLockedError
store = await open_store("shared")
run = await store.initialize_run(workflow_name="w", external_id="tabs")
await store.add_chat_message(agent_id=run.agent_id, session_id=run.session_id, run_id=None,
                             role="user", content=WHO)
json.dumps(run.session_id)
"""
    session_id = first.run(opened.replace("WHO", "'first'"))
    # The second tab is refused at once, with an error that says why ...
    refused = second.run(
        "import json\nfrom runstore.browser import open_store, StoreLockedError\n"
        "try:\n    await open_store('shared')\n    result = None\n"
        "except StoreLockedError as error:\n    result = str(error)\njson.dumps(result)"
    )
    assert refused and "open in another tab" in refused
    # ... or waits for the owner: here the first tab closes its store a little later.
    waiting = second.page.evaluate(
        "code => { window.waited = window.runPython(code); return true; }",
        "import json\nfrom runstore.browser import open_store\n"
        "store = await open_store('shared', lock_timeout=None)\n"
        "s = (await store.list_sessions())[0]\n"
        "await store.add_chat_message(agent_id=s.agent_id, session_id=s.id, run_id=None,"
        " role='user', content='second')\n"
        "h = await store.get_chat_history(s.id)\nawait store.close()\n"
        "json.dumps([m.content for m in h])",
    )
    assert waiting
    first.run(
        "import json\ns = (await store.list_sessions())[0]\n"
        "await store.add_chat_message(agent_id=s.agent_id, session_id=s.id, run_id=None,"
        " role='user', content='first again')\nawait store.close()\njson.dumps(None)"
    )
    seen = json.loads(second.page.evaluate("() => window.waited"))
    assert seen == ["first", "first again", "second"]
    # A tab that goes away releases the store: the first tab reopens it after a reload.
    first.reload()
    final = first.run(READ.replace('"notes"', '"shared"'))
    assert [m["content"] for m in final["messages"]] == ["first", "first again", "second"]
    assert [s["id"] for s in final["sessions"]] == [session_id]
    # A closed tab lets go too: the second tab's page is closed while holding the store.
    second.run("from runstore.browser import open_store\nstore = await open_store('shared2')\n'1'")
    second.page.close()
    profile.tabs.remove(second)
    reopen = "from runstore.browser import open_store\nawait open_store('shared2', lock_timeout=30)"
    assert first.run(reopen + "\n'1'") == 1


def test_calls_from_one_loop_after_another(profile: Profile) -> None:
    """docs/contract.md, "Event loops": the store is not tied to the loop that opened it. As a
    sync wrapper does, each ``new_event_loop().run_until_complete`` runs on a new WebLoop."""
    tab = profile.tab()
    code = """
import asyncio, json
from runstore.browser import open_store

store = await open_store("loops")
run = await store.initialize_run(workflow_name="loops")

async def add(content):
    message = await store.add_chat_message(agent_id=run.agent_id, session_id=run.session_id,
                                           run_id=run.run_id, role="user", content=content)
    return message.seq

async def turn(t):
    return await asyncio.gather(*(add(f"turn {t} {i}") for i in range(10)))

def on_a_new_loop(coroutine):
    return asyncio.new_event_loop().run_until_complete(coroutine)

seqs = [seq for t in range(3) for seq in on_a_new_loop(turn(t))]
on_a_new_loop(store.close())
on_a_new_loop(open_store("loops"))  # close let go of the lock: opening again succeeds at once
json.dumps(sorted(seqs))
"""
    assert tab.run(code) == list(range(1, 31))
    tab.reload()
    read = READ.replace('"notes"', '"loops"')
    assert [m["content"] for m in tab.run(read)["messages"]][-2:] == ["turn 2 8", "turn 2 9"]


def put_suite(tab: Tab) -> None:
    files = {
        f"{INNER_ROOT}/{path.relative_to(ROOT)}": path.read_text(encoding="utf-8")
        for pattern in SUITE
        for path in sorted(ROOT.glob(pattern))
    }
    tab.page.evaluate("files => window.writeFiles(files)", files)
    tab.page.evaluate(
        "names => window.loadPackages(names)", ["pytest", "pytest-asyncio", "hypothesis"]
    )


@cache
def native_test_ids() -> frozenset[str]:
    listing = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/contract",
            "--backends",
            "browser",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ids = frozenset(line for line in listing.splitlines() if "::" in line)
    assert ids, listing
    return ids


RUN_SUITE = """
import contextlib, io, json, os, sys
import pytest

os.chdir(ROOT)
sys.path.insert(0, ROOT + "/tests/browser")

class Outcomes:
    def __init__(self):
        self.outcomes = {}
    def pytest_runtest_logreport(self, report):
        if report.failed:
            self.outcomes[report.nodeid] = "failed" if report.when == "call" else "error"
        elif report.skipped:
            self.outcomes[report.nodeid] = "skipped"
        elif report.when == "call":
            self.outcomes.setdefault(report.nodeid, "passed")
    def pytest_collectreport(self, report):
        if report.failed:
            self.outcomes[report.nodeid or "<collection>"] = "collection error"

outcomes = Outcomes()
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
    code = pytest.main(["-p", "no:cacheprovider", "-p", "webloop_runner", "--color=no", "-q",
                        "tests/contract", "--backends", "browser"],
                       plugins=[outcomes])
json.dumps({"exit": int(code), "outcomes": outcomes.outcomes, "output": out.getvalue()})
"""


def test_contract_suite_passes_on_the_durable_store(profile: Profile) -> None:
    """All of tests/contract with ``--backends browser``, nothing deselected: every test a
    native collection lists runs and passes (the store-less ones too)."""
    tab = profile.tab()
    put_suite(tab)
    code = RUN_SUITE.replace("ROOT", repr(INNER_ROOT))
    report: dict[str, Any] = tab.run(code)
    summary = report["output"].strip().splitlines()
    print(f"inner pytest (Chromium, browser): {summary[-1] if summary else ''}")
    outcomes: dict[str, str] = report["outcomes"]
    not_passed = {test: outcome for test, outcome in outcomes.items() if outcome != "passed"}
    assert report["exit"] == 0 and not not_passed, report["output"][-20000:]
    assert set(outcomes) == native_test_ids()
