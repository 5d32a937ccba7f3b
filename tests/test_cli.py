"""``python -m runstore export|import|copy``: the real command line in a subprocess, between
SQLite files and PostgreSQL (the throwaway cluster, directly and through PgBouncer)."""

from __future__ import annotations

import gzip
import io
import json
import os
import pty
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from pg_server import shared_dsn, shared_pgbouncer_dsn

from runstore import ChatMsg, DataStorage, NewEntry, PostgresDataStorage, SqliteDataStorage
from runstore._cli import Progress


def cli(*args: str, stderr: int | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runstore", *args],
        capture_output=stderr is None,
        stderr=stderr,
        text=True,
        timeout=300,
        check=False,
    )


async def fill(store: DataStorage) -> None:
    run = await store.initialize_run(workflow_name="chat", session_id="s1", external_id="ada")
    messages = [ChatMsg("user", f"m{i} 🌍", run_id=run.run_id, token_count=i) for i in range(2500)]
    await store.add_chat_messages("s1", messages)
    await store.put_entries("langgraph", [NewEntry("t/1", {"v": 1}, data=b"\x00\x01", owner="ada")])


async def export_of(url_store: DataStorage) -> dict[str, Any]:
    async with url_store as store:
        return await store.export_data()


def pg_url(dsn: str, schema: str, pooler: bool = False) -> str:
    return f"{dsn}{'&' if '?' in dsn else '?'}schema={schema}" + (
        "&pooler=transaction" if pooler else ""
    )


@pytest.mark.parametrize("bouncer", [False, True], ids=["postgres", "pgbouncer"])
async def test_sqlite_to_postgres_and_back(tmp_path: Path, bouncer: bool) -> None:
    async with SqliteDataStorage(tmp_path / "a.db") as source:
        await fill(source)
        expected = await source.export_data()
    file = tmp_path / "a.jsonl.gz"
    done = cli("export", f"sqlite:///{tmp_path}/a.db", str(file))
    assert (done.returncode, done.stderr) == (0, "")  # no progress line off a terminal
    with gzip.open(file, "rt", encoding="utf-8") as lines:
        records = [json.loads(line) for line in lines]
    assert records[0]["kind"] == "header" and len(records) == 1 + 1 + 1 + 1 + 2500 + 1

    schema = f"cli_{uuid.uuid4().hex[:12]}"
    dsn = shared_pgbouncer_dsn() if bouncer else shared_dsn()
    url = pg_url(dsn, schema, bouncer)
    done = cli("import", url, str(file))
    assert (done.returncode, done.stderr) == (0, "")
    store = PostgresDataStorage(dsn, schema=schema, pooler="transaction" if bouncer else None)
    assert await export_of(store) == expected

    done = cli("copy", url, f"sqlite:///{tmp_path}/b.db")
    assert (done.returncode, done.stderr) == (0, "")
    assert await export_of(SqliteDataStorage(tmp_path / "b.db")) == expected
    done = cli("export", f"sqlite:///{tmp_path}/b.db", str(tmp_path / "b.jsonl"))
    assert done.returncode == 0
    plain = (tmp_path / "b.jsonl").read_text(encoding="utf-8")
    assert plain == gzip.decompress(file.read_bytes()).decode()  # the same bytes, both ways


async def test_a_bad_record_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    async with SqliteDataStorage(tmp_path / "a.db") as source:
        await fill(source)
    file = tmp_path / "a.jsonl"
    assert cli("export", f"sqlite:///{tmp_path}/a.db", str(file)).returncode == 0
    lines = file.read_text(encoding="utf-8").splitlines()
    bad = json.loads(lines[2000])
    bad["seq"] = -1
    lines[2000] = json.dumps(bad)
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    target = f"sqlite:///{tmp_path}/t.db"
    async with SqliteDataStorage(tmp_path / "t.db") as store:
        run = await store.initialize_run(workflow_name="mine")
        await store.add_chat_message(
            agent_id=run.agent_id, session_id=run.session_id, run_id=None, role="u", content="x"
        )
        before = await store.export_data()
    done = cli("import", target, str(tmp_path / "bad.jsonl"))
    assert done.returncode == 1
    assert "records[2000].seq" in done.stderr and "line 2001 of" in done.stderr
    assert "nothing written" in done.stderr
    assert await export_of(SqliteDataStorage(tmp_path / "t.db")) == before

    lines[7] = "{not json"
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = cli("import", target, str(tmp_path / "bad.jsonl"))
    assert done.returncode == 1 and "records[7]: is not JSON" in done.stderr
    assert "line 8 of" in done.stderr
    assert await export_of(SqliteDataStorage(tmp_path / "t.db")) == before

    done = cli("import", target, str(file))  # the ids exist in no store: it goes in
    assert done.returncode == 0
    done = cli("import", target, str(file))  # now they do
    assert done.returncode == 1 and "exists already" in done.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    for args in (
        ("export", "mysql://x", str(tmp_path / "x.jsonl")),
        ("export", f"sqlite:///{tmp_path}/a.db", str(tmp_path / "x.json")),
        ("import", f"sqlite:///{tmp_path}/a.db", str(tmp_path / "missing.jsonl")),
        ("copy", "sqlite:///", f"sqlite:///{tmp_path}/b.db"),
        ("frobnicate",),
    ):
        done = cli(*args)
        assert done.returncode == 2, args
        assert done.stderr.strip(), args
    assert sorted(os.listdir(tmp_path)) == []


def test_a_failed_export_leaves_no_file(tmp_path: Path) -> None:
    unreachable = "postgresql://runstore@127.0.0.1:1/postgres"
    done = cli("export", unreachable, str(tmp_path / "x.jsonl.gz"))
    assert done.returncode == 1 and "unavailable" in done.stderr
    assert os.listdir(tmp_path) == []


async def test_progress_line_on_a_terminal(tmp_path: Path) -> None:
    async with SqliteDataStorage(tmp_path / "a.db") as source:
        await fill(source)
    file = tmp_path / "a.jsonl"
    for args in (
        ("export", f"sqlite:///{tmp_path}/a.db", str(file)),
        ("import", f"sqlite:///{tmp_path}/b.db", str(file)),
    ):
        leader, follower = pty.openpty()
        try:
            done = cli(*args, stderr=follower)
            os.close(follower)
            shown = b""
            while True:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the terminal closed: everything was read
                    break
                if not chunk:
                    break
                shown += chunk
        finally:
            os.close(leader)
        assert done.returncode == 0
        last = shown.decode().replace("\x1b[K", "").split("\r")[-2]
        assert last.startswith(f"runstore {args[0]}: 2,505 records, ") and "elapsed" in last


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_line_estimates_the_time_left() -> None:
    shown = Terminal()
    progress = Progress("runstore import", shown, total=1000)
    progress.records = 40
    progress._draw(progress.start + 10.0, done=250)  # a quarter in 10 s: 30 s to go
    assert shown.getvalue() == (
        "\rrunstore import: 40 records, 4/s, 0:00:10 elapsed, about 0:00:30 left\x1b[K"
    )
    quiet = io.StringIO()  # not a terminal: nothing
    Progress("runstore import", quiet, total=1000).finish()
    assert quiet.getvalue() == ""
