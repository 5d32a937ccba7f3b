"""Several processes writing one SQLite file, and writers killed mid-stream."""

from __future__ import annotations

import random
import signal
from pathlib import Path

from sqlite_helpers import acknowledged, go, history, integrity, start_writer, stored

DRIVERS = ("sqlite3", "aiosqlite")


async def test_processes_appending_to_one_session(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"  # not created yet: the writers race to create it too
    per_writer = 300
    writers = [start_writer(path, DRIVERS[i % 2], f"w{i}", per_writer) for i in range(6)]
    for writer in writers:
        go(writer)
    acks: dict[str, int] = {}
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
        acks.update(acknowledged(out.splitlines()))
    assert len(acks) == 6 * per_writer

    messages = await history(path)
    assert [m.seq for m in messages] == list(range(1, 6 * per_writer + 1))
    assert stored(messages) == acks  # every message once, with the seq its writer was given
    for i in range(6):  # each writer's own messages are in the order it sent them
        seqs = [acks[f"w{i}:{n}"] for n in range(per_writer)]
        assert seqs == sorted(seqs)
    assert integrity(path) == [("ok",)]


async def test_writers_killed_mid_stream_lose_nothing_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    rng = random.Random(3)
    acks: dict[str, int] = {}
    for round_ in range(30):
        size = rng.choice([0, 3000])
        writer = start_writer(path, DRIVERS[round_ % 2], f"r{round_}", 0, size)
        assert writer.stdout is not None
        go(writer)
        wanted = rng.randint(1, 40)
        lines: list[str] = []
        while len(lines) < wanted:
            line = writer.stdout.readline()
            assert line, writer.stderr.read() if writer.stderr else "writer died"
            lines.append(line)
        writer.send_signal(signal.SIGKILL)
        rest, _ = writer.communicate(timeout=60)
        assert writer.returncode == -signal.SIGKILL
        acks.update(acknowledged([*lines, *rest.splitlines()]))

        assert integrity(path) == [("ok",)]
        messages = await history(path, DRIVERS[round_ % 2])
        assert [m.seq for m in messages] == list(range(1, len(messages) + 1))
        found = stored(messages)
        assert {key: found.get(key) for key in acks} == acks
