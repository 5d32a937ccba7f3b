"""runstore inside real Pyodide (Node and headless Chromium, via pytest-pyodide).

- The contract suite (tests/contract, with the model-based test) runs INSIDE Pyodide, unchanged:
  its files are copied into Pyodide's file system and ``pytest.main`` runs there; this test then
  checks the inner exit code and that exactly the natively collected tests passed.
- ``micropip.install`` of the built wheel from a same-origin URL and from ``emfs:``, with extras
  whose dependencies are marked ``sys_platform != 'emscripten'`` (so none is fetched).
- A store used from Pyodide's own loop (top-level ``await``, the WebLoop) starts no thread.

Run by scripts/test: ``pytest tests/pyodide --dist-dir build/pyodide --runtime node`` (or chrome).
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import zipfile
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
INNER_ROOT = "/home/pyodide/runstore"
SUITE = [
    "pyproject.toml",
    "tests/conftest.py",
    "tests/backends.py",
    "tests/contract/*.py",
    "tests/pyodide/noio_loop.py",
    "tests/pyodide/run_suite.py",
]
BACKENDS = ["memory", "sqlite-sqlite3"]


def put_files(selenium: Any, files: dict[str, bytes]) -> None:
    """Writes files (path -> bytes) into Pyodide's file system, as one zip."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name.lstrip("/"), data)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    selenium.run(
        "import base64, io, zipfile\n"
        f"zipfile.ZipFile(io.BytesIO(base64.b64decode({encoded!r}))).extractall('/')\n"
    )


def suite_files() -> dict[str, bytes]:
    return {
        f"{INNER_ROOT}/{path.relative_to(ROOT)}": path.read_bytes()
        for pattern in SUITE
        for path in sorted(ROOT.glob(pattern))
    }


@cache
def native_test_ids(backend: str) -> frozenset[str]:
    """The contract tests native pytest collects for ``backend``: Pyodide must pass them all."""
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
            backend,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ids = frozenset(line for line in listing.splitlines() if "::" in line)
    assert ids, listing
    return ids


@pytest.mark.driver_timeout(900)
@pytest.mark.parametrize("inner_backend", BACKENDS)
def test_contract_suite_passes_inside_pyodide(selenium_standalone: Any, inner_backend: str) -> None:
    selenium = selenium_standalone
    selenium.load_package(["pytest", "pytest-asyncio", "hypothesis", "runstore"])
    tools = ["pytest", "pytest-asyncio", "hypothesis"]
    inner_versions = selenium.run(
        f"import importlib.metadata as m\n' '.join(m.version(n) for n in {tools!r})"
    )
    assert inner_versions == " ".join(metadata.version(name) for name in tools)
    put_files(selenium, suite_files())
    # pytest-pyodide's Node runner waits for a script's result with pexpect's 60 s default,
    # whatever driver_timeout says; the whole contract suite takes longer than that.
    spawn = getattr(selenium, "p", None)
    if spawn is not None:
        spawn.timeout = 900
    args = ["-q", "tests/contract", "--backends", inner_backend]
    report = json.loads(
        selenium.run(
            f"import sys\nsys.path.insert(0, {INNER_ROOT + '/tests/pyodide'!r})\n"
            f"import run_suite\nrun_suite.main({INNER_ROOT!r}, {args!r})"
        )
    )
    summary = report["output"].strip().splitlines()
    print(f"inner pytest ({selenium.browser}, {inner_backend}): {summary[-1] if summary else ''}")
    outcomes: dict[str, str] = report["outcomes"]
    not_passed = {test: outcome for test, outcome in outcomes.items() if outcome != "passed"}
    assert report["exit"] == 0 and not not_passed, report["output"][-20000:]
    passed = set(outcomes)
    assert passed, "no test ran inside Pyodide"
    assert passed == native_test_ids(inner_backend)


ROUND_TRIP = """
import asyncio, json, sys, threading
import runstore

async def round_trip(store):
    run = await store.initialize_run(workflow_name="w", external_id="user-1")
    added = await asyncio.gather(*(
        store.add_chat_message(agent_id=run.agent_id, session_id=run.session_id,
                               run_id=run.run_id, role="user", content=f"m{i}")
        for i in range(20)
    ))
    await store.save_state(run.run_id, runstore.WorkflowState("w", status="running"))
    history = await store.get_chat_history(run.session_id, limit=None)
    state = await store.load_state(run.run_id)
    threads = threading.active_count()
    await store.close()
    return {
        "seqs": sorted(m.seq for m in added),
        "history": [m.content for m in history],
        "status": state.status,
        "threads": threads,
    }

results = {
    "memory": await round_trip(runstore.InMemoryDataStorage()),
    "sqlite": await round_trip(runstore.SqliteDataStorage("/tmp/store.db")),
}
sqlite_driver = runstore.SqliteDataStorage(":memory:").driver
try:
    threading.Thread(target=print).start()
    thread_error = None
except RuntimeError as error:
    thread_error = str(error)
json.dumps({
    "results": results,
    "sqlite_driver": sqlite_driver,
    "threads": threading.active_count(),
    "thread_error": thread_error,
    "platform": sys.platform,
    "installed": sorted(micropip.list()),
})
"""


def run_async(selenium: Any, code: str) -> Any:
    """Runs Python with top-level await on Pyodide's loop. Unlike ``selenium.run_async`` it does
    not pre-load packages named in ``import`` lines, which would install runstore from the lock
    before micropip could."""
    return selenium.run_js(
        f"return pyodide.$handleTestResult(await pyodide.runPythonAsync({code!r}));"
    )


def check_round_trip(report: dict[str, Any]) -> None:
    assert report["platform"] == "emscripten"
    for backend, result in report["results"].items():
        assert result["seqs"] == list(range(1, 21)), backend
        assert sorted(result["history"]) == sorted(f"m{i}" for i in range(20)), backend
        assert result["status"] == "running", backend
        assert result["threads"] == 1, backend
    assert report["sqlite_driver"] == "sqlite3"
    assert report["threads"] == 1
    # The check above means something: Pyodide refuses to start a thread.
    assert report["thread_error"] is not None
    # The extras' dependencies carry sys_platform != 'emscripten': micropip must not fetch them.
    assert "aiosqlite" not in report["installed"]
    assert "asyncpg" not in report["installed"]
    assert "runstore" in report["installed"]


@pytest.mark.driver_timeout(300)
def test_micropip_installs_the_wheel_from_a_same_origin_url(
    selenium_standalone: Any, wheel: Path
) -> None:
    selenium = selenium_standalone
    selenium.load_package("micropip")
    url = f"{selenium.base_url}/{wheel.name}"
    source = url
    report = run_async(
        selenium,
        "import micropip\n"
        f"await micropip.install({f'runstore[sqlite,postgres] @ {source}'!r}, deps=True)\n"
        f"assert micropip.list()['runstore'].source == {source!r}, micropip.list()['runstore']\n"
        + ROUND_TRIP,
    )
    check_round_trip(json.loads(report))


@pytest.mark.driver_timeout(300)
def test_micropip_installs_the_wheel_from_emfs(selenium_standalone: Any, wheel: Path) -> None:
    selenium = selenium_standalone
    selenium.load_package("micropip")
    target = f"/tmp/wheels/{wheel.name}"
    put_files(selenium, {target: wheel.read_bytes()})
    source = f"emfs:{target}"
    report = run_async(
        selenium,
        "import micropip\n"
        f"await micropip.install({f'runstore[sqlite,postgres] @ {source}'!r}, deps=True)\n"
        f"assert micropip.list()['runstore'].source == {source!r}, micropip.list()['runstore']\n"
        + ROUND_TRIP,
    )
    check_round_trip(json.loads(report))


def test_wheel_is_pure_small_and_dependency_free(wheel: Path) -> None:
    assert wheel.name.endswith("-py3-none-any.whl")
    # issue 5 asked for under 60 KB. On 2026-11-26 the wheel was 96 KB: the core 84 KB (with the
    # LICENSE 4 KB, messages v2, entries, the durable browser store) and four framework adapters
    # 12 KB (extras Pyodide never imports). On 2026-12-07 it is 140 KB: the core 121 KB (the record
    # stream and export v3 7 KB, the CLI 3 KB, erase/prune/stats 3 KB, search 3 KB, their SQL, a
    # longer README in METADATA) and the adapters 19 KB (ADK's memory service); with LangGraph's
    # store (RunstoreStore) the adapters are 25 KB, the wheel 148 KB. Later on 2026-12-07 the
    # core is 132 KB: session metadata, per-session counters and PostgreSQL's one-statement calls
    # (PL/pgSQL in its migrations), entry search; 26 KB of it is PostgreSQL code Pyodide never
    # imports. The wheel is 158 KB; micropip install + import cost 8% of boot. What users pay is
    # measured by scripts/bench (micropip install + import against Pyodide's boot, target < 15%);
    # these budgets catch growth.
    with zipfile.ZipFile(wheel) as archive:
        adapters = sum(
            i.compress_size
            for i in archive.infolist()
            if i.filename.startswith("runstore/integrations/")
        )
    assert wheel.stat().st_size - adapters < 136_000
    assert adapters < 28_000
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata,) = (n for n in names if n.endswith(".dist-info/METADATA"))
        requires = [
            line.split(":", 1)[1].strip()
            for line in archive.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist:")
        ]
    assert "runstore/__init__.py" in names and "runstore/py.typed" in names
    assert all(n.startswith("runstore/") or ".dist-info/" in n for n in names), names
    # Only the optional native drivers, never needed (nor fetched) in Pyodide.
    assert requires and all(
        "extra ==" in r and "sys_platform != 'emscripten'" in r for r in requires
    ), requires
