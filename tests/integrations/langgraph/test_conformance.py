"""LangGraph's own conformance suite (``langgraph-checkpoint-conformance``, pinned in
scripts/test) against ``RunstoreSaver`` on every backend, next to LangGraph's ``InMemorySaver``.

Every capability, required and optional, must be detected and pass. The counts are printed
(``-s``) so a run shows them side by side.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncGenerator
from pathlib import Path
from uuid import uuid4

import pytest
from backends import FACTORIES
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES
from langgraph.checkpoint.memory import InMemorySaver

from runstore.integrations.langgraph import RunstoreSaver

ALL = sorted(c.value for c in ALL_CAPABILITIES)


def summary(report: object) -> dict[str, tuple[bool, bool | None, int, int]]:
    results = report.results  # type: ignore[attr-defined]
    return {
        name: (r.detected, r.passed, r.tests_passed, r.tests_failed)
        for name, r in sorted(results.items())
    }


def check_all_pass(name: str, report: object) -> None:
    counts = summary(report)
    passed = sum(c[2] for c in counts.values())
    failed = sum(c[3] for c in counts.values())
    print(
        f"\n{name}: {passed} passed, {failed} failed; "
        + ", ".join(f"{cap} {c[2]}/{c[2] + c[3]}" for cap, c in counts.items())
    )
    failures = {
        cap: r.failures
        for cap, r in report.results.items()
        if r.failures  # type: ignore[attr-defined]
    }
    assert not failures, failures
    assert sorted(counts) == ALL
    assert all(c[0] and c[1] for c in counts.values()), counts


@pytest.mark.reference("InMemorySaver")
async def test_in_memory_saver_reference() -> None:
    @checkpointer_test(name="InMemorySaver")
    async def factory() -> AsyncGenerator[BaseCheckpointSaver, None]:
        yield InMemorySaver()

    report = await validate(factory)
    counts = summary(report)
    print("\nInMemorySaver:", {k: f"{v[2]}/{v[2] + v[3]}" for k, v in counts.items()})
    failures = {cap: r.failures for cap, r in report.results.items() if r.failures}  # type: ignore[attr-defined]
    assert not failures, failures  # LangGraph's own saver fails its own suite: the environment


async def test_runstore_saver_passes_every_capability(backend: str, tmp_path: Path) -> None:
    counter = itertools.count()

    @checkpointer_test(name=f"RunstoreSaver[{backend}]")
    async def factory() -> AsyncGenerator[BaseCheckpointSaver, None]:
        folder = tmp_path / f"store{next(counter)}"
        folder.mkdir()
        store = await FACTORIES[backend](folder)
        try:
            yield RunstoreSaver(store)
        finally:
            await store.close()

    check_all_pass(f"RunstoreSaver[{backend}]", await validate(factory))


async def test_fifty_concurrent_put_writes_lose_nothing(backend: str, tmp_path: Path) -> None:
    store = await FACTORIES[backend](tmp_path)
    try:
        saver = RunstoreSaver(store)
        config = {"configurable": {"thread_id": str(uuid4()), "checkpoint_ns": ""}}
        checkpoint = {
            "v": 1,
            "id": "1f0a0000-0000-6000-8000-000000000001",
            "ts": "2026-01-01T00:00:00+00:00",
            "channel_values": {},
            "channel_versions": {},
            "versions_seen": {},
            "pending_sends": [],
        }
        stored = await saver.aput(config, checkpoint, {"source": "loop", "step": 0}, {})  # type: ignore[arg-type]
        tasks = [str(uuid4()) for _ in range(50)]
        await asyncio.gather(
            *(
                saver.aput_writes(stored, [("ch", i), ("other", {"task": i})], task)
                for i, task in enumerate(tasks)
            )
        )
        found = await saver.aget_tuple(stored)
        assert found is not None and found.pending_writes is not None
        got = {(w[0], w[1], repr(w[2])) for w in found.pending_writes}
        want = {(t, "ch", repr(i)) for i, t in enumerate(tasks)}
        want |= {(t, "other", repr({"task": i})) for i, t in enumerate(tasks)}
        assert got == want
    finally:
        await store.close()
