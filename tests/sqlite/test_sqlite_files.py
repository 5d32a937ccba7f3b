"""Opening files: upgrading an older runstore file, refusing newer or foreign ones."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runstore import InvalidDataError, SqliteDataStorage, StorageError, WorkflowState
from runstore._sqlite_sql import SCHEMA_VERSION

FIXTURE = Path(__file__).parent / "fixtures" / "runstore-v1.sqlite"
T0 = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)  # the fixture's clock starts here


def pragma(path: Path, name: str) -> object:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        connection.close()


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("driver", ["sqlite3", "aiosqlite"])
async def test_a_version_1_file_is_upgraded_in_place_keeping_its_rows(
    tmp_path: Path, driver: str
) -> None:
    path = tmp_path / "old.sqlite"
    shutil.copy(FIXTURE, path)
    assert pragma(path, "user_version") == 1

    async with SqliteDataStorage(path, driver=driver) as store:
        [agent] = await store.list_agents()
        assert (agent.name, agent.description, agent.workflow) == (
            "chat",
            "a chat bot",
            {"nodes": ["a"]},
        )
        assert agent.created_at == T0
        session = await store.get_session("s1")
        assert session is not None and session.external_id == "user-1"
        assert [s.id for s in await store.list_sessions()] == ["s1", "s2"]
        history = await store.get_chat_history("s1")
        assert [(m.seq, m.role, m.content, m.run_id) for m in history] == [
            (1, "user", "hello", "r1"),
            (2, "assistant", "hi there", "r1"),
            (3, "system", None, None),
        ]
        run = await store.get_run("r1")
        assert run is not None
        assert (run.input_data, run.output_data, run.context, run.duration_seconds) == (
            {"q": "hi"},
            {"a": 1},
            {"c": 2},
            1.5,
        )
        assert await store.load_state("r1") == WorkflowState(
            "chat", status="completed", trace=["start", "reply"]
        )
        # The new per-session counter continues where each session's messages ended.
        for session_id, run_id, expected in (("s1", "r1", 4), ("s2", "r2", 2)):
            message = await store.add_chat_message(
                agent_id=agent.id, session_id=session_id, run_id=run_id, role="user", content="new"
            )
            assert message.seq == expected
        again = await store.initialize_run(workflow_name="chat", external_id="user-1")
        assert again.session_id == "s1"
    assert pragma(path, "user_version") == SCHEMA_VERSION
    assert pragma(path, "integrity_check") == "ok"


async def test_a_file_from_a_newer_runstore_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    async with SqliteDataStorage(path, driver="sqlite3") as store:
        await store.initialize_run(workflow_name="chat")
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    before = files(tmp_path)
    for driver in ("sqlite3", "aiosqlite"):
        store = SqliteDataStorage(path, driver=driver)
        with pytest.raises(StorageError, match="newer runstore"):
            await store.list_agents()
        await store.close()
    assert files(tmp_path) == before


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            lambda path: sqlite3.connect(path).execute("CREATE TABLE t (x)"), id="other-db"
        ),
        pytest.param(
            lambda path: path.write_bytes(b"not a database at all\n" * 100), id="not-sqlite"
        ),
    ],
)
async def test_a_file_that_is_not_a_runstore_database_is_refused_untouched(
    tmp_path: Path, make: object
) -> None:
    path = tmp_path / "foreign.db"
    make(path)  # type: ignore[operator]
    before = files(tmp_path)
    for driver in ("sqlite3", "aiosqlite"):
        with pytest.raises(StorageError, match="not a"):
            await SqliteDataStorage(path, driver=driver).open()
        with pytest.raises(StorageError, match="not a"):  # on entry, not at the first call
            async with SqliteDataStorage(path, driver=driver):
                pass
    assert files(tmp_path) == before


async def test_sessions_with_equal_activity_times_page_by_id(tmp_path: Path) -> None:
    # Two processes can give sessions the same updated_at; paging must then go by id.
    when = "2024-01-01T00:00:00+00:00"
    document = {
        "format": "runstore.export",
        "version": 1,
        "agents": [
            {
                "id": "a",
                "name": "chat",
                "description": None,
                "input_schema": None,
                "output_schema": None,
                "workflow": None,
                "created_at": when,
                "updated_at": when,
            }
        ],
        "sessions": [
            {"id": sid, "agent_id": "a", "external_id": "u", "created_at": when, "updated_at": when}
            for sid in ("s2", "s3", "s1")
        ],
        "runs": [],
        "messages": [],
    }
    async with SqliteDataStorage(tmp_path / "ties.db", driver="sqlite3") as store:
        await store.import_data(document)
        for filters in (
            {},
            {"workflow_name": "chat"},
            {"external_id": "u"},
            {"workflow_name": "chat", "external_id": "u"},
        ):
            pages: list[str] = []
            before = None
            while True:
                page = await store.list_sessions(limit=1, before=before, **filters)  # type: ignore[arg-type]
                if not page:
                    break
                pages.append(page[0].id)
                before = page[0].id
            assert pages == ["s3", "s2", "s1"], filters


@pytest.mark.parametrize("driver", ["sqlite3", "aiosqlite"])
@pytest.mark.parametrize("where", ["no such folder", "a folder"])
async def test_a_file_sqlite_cannot_open_is_a_bad_path_named_in_the_error(
    tmp_path: Path, driver: str, where: str
) -> None:
    path = tmp_path / "no" / "such" / "dir" / "x.db" if where == "no such folder" else tmp_path
    store = SqliteDataStorage(path, driver=driver)
    with pytest.raises(InvalidDataError) as raised:
        await store.open()
    assert raised.value.field == "path"
    assert repr(str(path)) in str(raised.value)
    assert "unable to open database file" in str(raised.value)
    await store.close()
    assert not any(tmp_path.iterdir())  # nothing made on the way  # noqa: ASYNC240
