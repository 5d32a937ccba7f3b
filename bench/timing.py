"""Timing: repetitions, medians with min-max, and the chat-turn measurement loop."""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .workload import Subject


@dataclass(frozen=True)
class Settings:
    reps: int = 5  # repetitions per figure
    budget: float = 0.2  # seconds one repetition aims at
    max_turns: int = 2000  # turns per repetition at most
    max_seconds: float = 8.0  # all repetitions of one figure, roughly, at most
    min_reps: int = 3

    @classmethod
    def quick(cls) -> Settings:
        return cls(reps=3, budget=0.03, max_turns=300, max_seconds=2.0, min_reps=2)


@dataclass
class Figure:
    """One measured figure: one sample per repetition, in the figure's unit."""

    samples: list[float]
    unit: str = "µs"
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)


def number(value: float) -> str:
    """Three significant figures, thousands separated."""
    if value == 0:
        return "0"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:,.{digits}f}"


def cell(figure: Figure) -> str:
    return f"{number(figure.median)} ({number(figure.low)}-{number(figure.high)})"


async def _run(subject: Subject, handles: list[Any]) -> float:
    """Seconds for one turn on each handle, in order."""
    turn = subject.turn
    if subject.is_async:
        start = time.perf_counter()
        for handle in handles:
            await turn(handle)  # type: ignore[misc]
        return time.perf_counter() - start
    start = time.perf_counter()
    for handle in handles:
        turn(handle)
    return time.perf_counter() - start


async def measure_turns(subject: Subject, size: int, settings: Settings) -> Figure:
    """µs per turn on sessions holding ``size`` messages.

    A calibration session sets how many turns a repetition runs. The turns are then spread
    round-robin over enough fresh sessions that none grows by more than 10% (at least 20
    messages) during the whole measurement, so every turn sees about ``size`` messages.
    """
    (calibration,) = await subject.add_sessions(1, size)
    first = await _run(subject, [calibration])  # warm-up: caches, prepared statements
    spent, turns = 0.0, 0
    if first > settings.budget:  # a slow store: the warm-up turn calibrates too
        spent, turns = first, 1
    while turns < 5 and spent < settings.budget / 4:
        spent += await _run(subject, [calibration])
        turns += 1
    per_turn = spent / turns
    per_rep = max(1, min(settings.max_turns, int(settings.budget / per_turn)))
    reps = settings.reps
    if per_turn * per_rep * reps > settings.max_seconds:
        reps = max(settings.min_reps, int(settings.max_seconds / (per_turn * per_rep)))
    growth = max(size // 10, 20)
    turns_per_session = max(1, growth // 2)
    per_rep = max(1, min(per_rep, subject.max_sessions * turns_per_session // reps))
    count = math.ceil(per_rep * reps / turns_per_session)
    sessions = await subject.add_sessions(count, size)
    samples: list[float] = []
    for rep in range(reps):
        order = [sessions[(rep * per_rep + i) % count] for i in range(per_rep)]
        gc.collect()
        samples.append(await _run(subject, order) / per_rep * 1e6)
    return Figure(samples, notes={"turns": per_rep, "reps": reps, "sessions": count})


async def measure_calls(
    call: Callable[[], Awaitable[Any]], settings: Settings, *, per_rep: int | None = None
) -> Figure:
    """µs per ``await call()``, median over repetitions."""
    if per_rep is None:
        start = time.perf_counter()
        await call()
        once = max(time.perf_counter() - start, 1e-7)
        per_rep = max(1, min(settings.max_turns, int(settings.budget / once)))
    samples: list[float] = []
    for _ in range(settings.reps):
        gc.collect()
        start = time.perf_counter()
        for _ in range(per_rep):
            await call()
        samples.append((time.perf_counter() - start) / per_rep * 1e6)
    return Figure(samples, notes={"calls": per_rep})
