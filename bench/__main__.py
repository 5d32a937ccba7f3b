"""``python -m bench [--quick] [--out DIR]``: every benchmark in one process, one run; writes
DIR/benchmarks.md, DIR/benchmarks.json and DIR/benchmarks.png (DIR defaults to docs/; then
the generated blocks of the other pages are refilled too: bench/docs.py)."""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

from . import (
    browser,
    capacity,
    docs,
    extras,
    messages,
    pyodide,
    retention,
    search,
    streaming,
    workflows,
)
from .postgres import Server, concurrency
from .report import Results, markdown, plot
from .timing import Settings
from .turns import log, measure_all


async def run(settings: Settings) -> Results:
    started = time.perf_counter()
    server = Server()
    server.start()
    try:
        log(f"PostgreSQL: {server.dsn or server.why_not}; PgBouncer: {server.pgbouncer_dsn}")
        log("== µs per chat turn")
        results = Results(
            settings,
            datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            await measure_all(server.dsn, settings, pgbouncer_dsn=server.pgbouncer_dsn),
        )
        log("== PostgreSQL concurrency")
        results.concurrency = await concurrency(
            server.dsn, server.why_not, settings, server.pgbouncer_dsn
        )
        log("== initialize_run")
        results.initialize = await extras.initialize_run_costs(server.dsn, settings)
        log("== workflow adapters (LangGraph, ADK)")
        results.workflows = await workflows.measure(server.dsn, quick=settings.reps < 5)
        log("== fork_session, pop_message, idempotent repeat")
        results.forks = await messages.fork_costs(server.dsn, settings)
        results.undo = await messages.undo_and_retry_costs(server.dsn, settings)
        log("== search_messages next to a full scan")
        sizes = search.SEARCH_SIZES if settings.reps >= 5 else (10_000, 100_000)
        results.search = await search.search_costs(server.dsn, settings, sizes)
        log("== search_entries next to a full scan")
        results.entry_search = await search.entry_search_costs(server.dsn, settings)
        log("== capacity (PostgreSQL)")
        size = capacity.size_from_env(quick=settings.reps < 5)
        results.capacity = await capacity.measure(server.dsn, server.why_not, settings, size)
        log("== streaming copy: export_records + import_records, SQLite <-> PostgreSQL")
        results.streaming = await asyncio.to_thread(
            streaming.measure, server.dsn, settings.reps < 5, log
        )
        log("== retention: prune(keep_last=50)")
        sessions = retention.SESSIONS if settings.reps >= 5 else retention.SESSIONS // 10
        results.retention = await retention.measure(server.dsn, server.why_not, sessions)
    finally:
        server.stop()
    log("== one add vs one INSERT+COMMIT")
    results.adds = await extras.single_adds(settings)
    log("== memory per message")
    results.memory = await extras.memory_per_message()
    log("== history read at P = 1M")
    results.huge = await extras.huge_reads(settings)
    log("== Pyodide")
    results.pyodide, results.pyodide_missing = await pyodide.measure(results)
    results.seconds = time.perf_counter() - started
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few repetitions (development)")
    parser.add_argument("--out", type=Path, default=Path("docs"), help="where to write")
    args = parser.parse_args()
    settings = Settings.quick() if args.quick else Settings()
    results = asyncio.run(run(settings))
    log("== Chromium: the durable browser store")
    started = time.perf_counter()
    results.browser, results.browser_missing = browser.measure(results)
    results.seconds += time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    text = markdown(results)
    (args.out / "benchmarks.md").write_text(text + "\n", encoding="utf-8")
    plot(results, args.out / "benchmarks.png")
    if args.out.resolve() == docs.DOCS:  # the committed run: its data, and every page's blocks
        docs.write()
    else:
        data = docs.tables(text)
        (args.out / "benchmarks.json").write_text(docs.dump(data), encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
