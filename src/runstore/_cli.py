"""``python -m runstore``: export a store to a JSON Lines file, import one, or copy a store.

    python -m runstore export URL FILE.jsonl[.gz]
    python -m runstore import URL FILE.jsonl[.gz]
    python -m runstore copy SOURCE_URL TARGET_URL

URLs: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, ``postgresql://...``
(``?schema=NAME`` and ``?pooler=transaction`` are runstore's own options). A file holds one
record of ``export_records`` per line (gzip when it ends in ``.gz``). An import or a copy is all
or nothing. On a terminal, a progress line on stderr shows the records, the rate and the time
left. Exit status: 0 done, 1 refused or failed (the message names the record), 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import IO, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .base import DataStorage
from .errors import InvalidDataError, StorageError

PROG = "python -m runstore"
_RECORD = re.compile(r"^records\[(\d+)\]")


class UsageError(Exception):
    """A URL or file name the command line cannot use."""


def open_store(url: str) -> DataStorage:
    """The store a URL names (not opened yet)."""
    if url.startswith("sqlite:///"):
        from .sqlite import SqliteDataStorage

        path = url[len("sqlite:///") :]
        if not path:
            raise UsageError(f"{url!r}: give a path, e.g. sqlite:///agents.db")
        return SqliteDataStorage(path, driver="sqlite3")
    if url.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        own = {key: value for key, value in query if key in ("schema", "pooler")}
        rest = [(key, value) for key, value in query if key not in own]
        dsn = urlunsplit(parts._replace(query=urlencode(rest)))
        try:
            from .postgres import PostgresDataStorage
        except ModuleNotFoundError as exc:
            raise UsageError(str(exc)) from None
        return PostgresDataStorage(dsn, schema=own.get("schema"), pooler=own.get("pooler"))
    raise UsageError(f"{url!r}: a store URL starts with sqlite:/// or postgresql://")


class Progress:
    """A progress line on stderr, redrawn at most five times a second, only on a terminal."""

    def __init__(self, verb: str, stream: IO[str], total: int | None = None) -> None:
        self.verb = verb
        self.stream = stream
        self.shown = stream.isatty()
        self.total = total  # of what ``done`` counts, for the time left (None: unknown)
        self.start = self.last = time.monotonic()
        self.records = 0

    def update(self, records: int, done: int | None = None) -> None:
        self.records = records
        now = time.monotonic()
        if not self.shown or now - self.last < 0.2:
            return
        self.last = now
        self._draw(now, done)

    def _draw(self, now: float, done: int | None) -> None:
        elapsed = max(now - self.start, 1e-9)
        line = f"{self.verb}: {self.records:,} records, {self.records / elapsed:,.0f}/s, "
        line += f"{_clock(elapsed)} elapsed"
        if self.total and done:
            left = elapsed * (self.total - done) / done
            line += f", about {_clock(left)} left"
        self.stream.write(f"\r{line}\x1b[K")
        self.stream.flush()

    def finish(self) -> None:
        if self.shown:
            self._draw(time.monotonic(), None)
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _open_output(path: str, gzipped: bool) -> IO[bytes]:
    if gzipped:
        return gzip.open(path, "wb")  # type: ignore[return-value]
    return open(path, "wb")


async def export(url: str, out: IO[bytes], progress: Progress) -> None:
    """Write the store's records to ``out``, one JSON document per line."""
    count = 0
    async with open_store(url) as store:
        async for record in store.export_records():
            out.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
            count += 1
            progress.update(count)


def export_file(url: str, path: str, progress: Progress) -> None:
    """``export`` to ``path`` through a temporary file, renamed once complete."""
    partial = f"{path}.partial"
    try:
        with _open_output(partial, path.endswith(".gz")) as out:
            asyncio.run(export(url, out, progress))
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise
    os.replace(partial, path)


def _lines(raw: IO[bytes], gzipped: bool) -> Iterator[bytes]:
    if not gzipped:
        yield from raw
        return
    with gzip.open(raw) as lines:
        yield from lines


def _read_lines(path: str, progress: Progress) -> Iterator[Any]:
    """The records of a file, one per line (a line that is not JSON is refused, named)."""
    progress.total = os.path.getsize(path)
    with open(path, "rb") as raw:
        for index, line in enumerate(_lines(raw, path.endswith(".gz"))):
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise InvalidDataError(f"records[{index}]", f"is not JSON: {exc}") from None
            yield record
            progress.update(index + 1, raw.tell())


async def import_records(url: str, records: Iterator[Any]) -> None:
    async with open_store(url) as store:
        await store.import_records(records)


async def copy(source_url: str, target_url: str, progress: Progress) -> None:
    async with open_store(source_url) as source, open_store(target_url) as target:

        async def counted() -> AsyncIterator[dict[str, Any]]:
            count = 0
            async for record in source.export_records():
                yield record
                count += 1
                progress.update(count)

        await target.import_records(counted())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Export, import or copy a runstore store as a stream of records.",
        epilog="URLs: sqlite:///path.db, sqlite:////abs/path.db, "
        "postgresql://user@host/db[?schema=NAME&pooler=transaction]",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("export", help="write every record of a store to a file")
    one.add_argument("url")
    one.add_argument("file", help="FILE.jsonl or FILE.jsonl.gz")
    two = commands.add_parser("import", help="add the records of a file to a store")
    two.add_argument("url")
    two.add_argument("file")
    three = commands.add_parser("copy", help="add every record of one store to another")
    three.add_argument("source")
    three.add_argument("target")
    return parser


def _where(error: InvalidDataError, command: str, file: str) -> str:
    """Where a refused record is: its number and, in a file, its line."""
    found = _RECORD.match(error.field)
    if found is None or command != "import":
        return ""
    return f" (line {int(found.group(1)) + 1} of {file})"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    verb = f"runstore {args.command}"
    progress = Progress(verb, sys.stderr)
    try:
        if args.command == "export":
            if not args.file.endswith((".jsonl", ".jsonl.gz")):
                raise UsageError(f"{args.file!r}: the file name ends in .jsonl or .jsonl.gz")
            export_file(args.url, args.file, progress)
        elif args.command == "import":
            if not os.path.isfile(args.file):
                raise UsageError(f"{args.file!r}: no such file")
            asyncio.run(import_records(args.url, _read_lines(args.file, progress)))
        else:
            asyncio.run(copy(args.source, args.target, progress))
    except UsageError as exc:
        print(f"{verb}: {exc}", file=sys.stderr)
        return 2
    except InvalidDataError as exc:
        progress.finish()
        where = _where(exc, args.command, getattr(args, "file", ""))
        print(f"{verb}: refused, nothing written: {exc}{where}", file=sys.stderr)
        return 1
    except (StorageError, OSError) as exc:
        progress.finish()
        print(f"{verb}: failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        progress.finish()
        print(f"{verb}: interrupted, nothing written", file=sys.stderr)
        return 130
    progress.finish()
    return 0
