"""Shared by the SQLite-specific tests: writer processes and reading a file back."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from runstore import ChatMsg, SqliteDataStorage

WRITER = Path(__file__).with_name("writer.py")


def start_writer(
    path: Path, driver: str, name: str, count: int, size: int = 0
) -> subprocess.Popen[str]:
    """Start a writer and wait until it has joined the session; ``go`` lets it write."""
    writer = subprocess.Popen(
        [sys.executable, str(WRITER), str(path), driver, name, str(count), str(size)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    ready = writer.stdout.readline()
    assert ready.startswith("ready "), writer.stderr.read() if writer.stderr else ready
    return writer


def go(writer: subprocess.Popen[str]) -> None:
    assert writer.stdin is not None
    writer.stdin.write("go\n")
    writer.stdin.flush()


def acknowledged(lines: list[str]) -> dict[str, int]:
    """Message key ("NAME:i") -> seq, from a writer's output."""
    acks: dict[str, int] = {}
    for line in lines:
        if line.startswith("ready "):
            continue
        key, seq = line.split()
        acks[key] = int(seq)
    return acks


def integrity(path: Path) -> list[tuple[str, ...]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("PRAGMA integrity_check").fetchall()
    finally:
        connection.close()


async def history(path: Path, driver: str = "sqlite3") -> list[ChatMsg]:
    async with SqliteDataStorage(path, driver=driver) as store:
        return await store.get_chat_history("shared", limit=None)


def stored(messages: list[ChatMsg]) -> dict[str, int]:
    """Message key ("NAME:i") -> seq, from the stored messages."""
    keys: dict[str, int] = {}
    for message in messages:
        assert message.content is not None and message.seq is not None
        name, index, _ = message.content.split(":", 2)
        key = f"{name}:{index}"
        assert key not in keys, f"{key} stored twice"
        keys[key] = message.seq
    return keys
