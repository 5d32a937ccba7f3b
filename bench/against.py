"""``python -m bench.against REV``: the chat turn of this checkout next to runstore at git
revision REV, in one run (same rounds, same floors), for the in-memory and SQLite stores.

Answers "is the turn slower than before?" where two separate bench runs cannot: their ratios to
the floor swing by 10-20% from run to run on a shared machine. REV's ``src/runstore`` is
extracted with ``git archive`` and imported under another name, so both versions live in one
process; that works for revisions whose package imports itself only relatively (all so far).
Prints each store's ratio to its floor and the per-round ratio this checkout / REV.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from . import turns
from .floors import BareList, RawAiosqlite, RawSqlite3
from .runstore_stores import RunstoreMemory, RunstoreSqlite
from .timing import Settings, ratio

ROOT = Path(__file__).resolve().parents[1]


def import_revision(rev: str, into: Path) -> ModuleType:
    """runstore as it was at ``rev``, imported as ``runstore_at_rev``."""
    archive = subprocess.run(
        ["git", "archive", rev, "src/runstore"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    (into / "src" / "runstore").rename(into / "runstore_at_rev")
    sys.path.insert(0, str(into))
    return importlib.import_module("runstore_at_rev")


def subjects(old: ModuleType, rev: str) -> list[tuple[str, Any]]:
    class OldMemory(RunstoreMemory):
        name = f"runstore in-memory ({rev})"

        async def make(self, workdir: Path) -> Any:
            return old.InMemoryDataStorage()

    class OldSqlite(RunstoreSqlite):
        def __init__(self, driver: str) -> None:
            super().__init__(driver)
            self.name += f" ({rev})"

        async def make(self, workdir: Path) -> Any:
            return old.SqliteDataStorage(str(workdir / "old.sqlite3"), driver=self.driver)

    return [
        ("floor", BareList),
        ("floor", RawSqlite3),
        ("floor", RawAiosqlite),
        ("runstore", RunstoreMemory),
        ("runstore", OldMemory),
        ("runstore", lambda: RunstoreSqlite("sqlite3")),
        ("runstore", lambda: OldSqlite("sqlite3")),
        ("runstore", lambda: RunstoreSqlite("aiosqlite")),
        ("runstore", lambda: OldSqlite("aiosqlite")),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rev", help="a git revision, e.g. 9d2de39")
    parser.add_argument("--quick", action="store_true", help="few repetitions (development)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="runstore-against-"))
    try:
        old = import_revision(args.rev, folder)
        made = subjects(old, args.rev)
        turns.subjects = lambda dsn, pgbouncer_dsn=None: made
        settings = Settings.quick() if args.quick else Settings()
        rows = {row.name: row for row in asyncio.run(turns.measure_all(None, settings))}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\nratio to the floor (median of per-round ratios), and this checkout / {args.rev}")
    for row in rows.values():
        if row.floor is None:
            continue
        figures = "  ".join(
            f"P={size:,}: {ratio(figure, rows[row.floor].figures[size]):.2f}x"
            for size, figure in row.figures.items()
        )
        print(f"  {row.name:<58} {figures}")
    for row in rows.values():
        before = rows.get(f"{row.name} ({args.rev})")
        if before is not None:
            figures = "  ".join(
                f"P={size:,}: {ratio(figure, before.figures[size]):.2f}x"
                for size, figure in row.figures.items()
            )
            print(f"  {row.name + ' / ' + args.rev:<58} {figures}")


if __name__ == "__main__":
    main()
