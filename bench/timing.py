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


@dataclass
class Plan:
    """A calibrated, pre-filled measurement of one subject at one size: ``reps`` repetitions
    of ``per_rep`` turns each, spread round-robin over ``sessions``."""

    subject: Subject
    sessions: list[Any]
    per_rep: int
    reps: int
    samples: list[float] = field(default_factory=list)

    async def run_rep(self) -> None:
        rep, count = len(self.samples), len(self.sessions)
        order = [self.sessions[(rep * self.per_rep + i) % count] for i in range(self.per_rep)]
        gc.collect()
        self.samples.append(await _run(self.subject, order) / self.per_rep * 1e6)

    def figure(self) -> Figure:
        notes = {"turns": self.per_rep, "reps": self.reps, "sessions": len(self.sessions)}
        return Figure(self.samples, notes=notes)


async def prepare(subject: Subject, size: int, settings: Settings) -> Plan:
    """Calibrate and pre-fill for µs per turn on sessions holding ``size`` messages.

    A calibration session sets how many turns a repetition runs. The turns are then spread
    round-robin over enough fresh sessions that none grows by more than 10% (at least 20
    messages) during the whole measurement, so every turn sees about ``size`` messages.
    """
    (calibration,) = await subject.add_sessions(1, size)
    first = await _run(subject, [calibration])  # warm-up: caches, prepared statements
    times = [first] if first > settings.budget else []  # a slow store: it calibrates too
    while len(times) < 5 and sum(times) < settings.budget / 4:
        times.append(await _run(subject, [calibration]))
    per_turn = statistics.median(times)  # one hiccup does not set the repetition size
    per_rep = max(1, min(settings.max_turns, int(settings.budget / per_turn)))
    reps = settings.reps
    if per_turn * per_rep * reps > settings.max_seconds:
        reps = max(settings.min_reps, int(settings.max_seconds / (per_turn * per_rep)))
    growth = max(size // 10, 20)
    turns_per_session = max(1, growth // 2)
    per_rep = max(1, min(per_rep, subject.max_sessions * turns_per_session // reps))
    count = math.ceil(per_rep * reps / turns_per_session)
    return Plan(subject, await subject.add_sessions(count, size), per_rep, reps)


async def measure_turns(subject: Subject, size: int, settings: Settings) -> Figure:
    """µs per turn for one subject alone (see ``prepare``)."""
    plan = await prepare(subject, size, settings)
    for _ in range(plan.reps):
        await plan.run_rep()
    return plan.figure()


async def interleave(plans: list[Plan]) -> None:
    """Run the plans' repetitions in rounds (one repetition of each per round), so that a
    change in the machine's load hits every store alike and ratios stay fair.

    Every pre-filled object is frozen out of the cyclic GC meanwhile (``gc.freeze``): all
    stores share one heap here, and a full collection over the others' pre-filled data must
    not land on whichever store's turn triggers it."""
    gc.collect()
    gc.freeze()
    try:
        for rep in range(max((p.reps for p in plans), default=0)):
            for plan in plans:
                if rep < plan.reps:
                    await plan.run_rep()
    finally:
        gc.unfreeze()


def ratio(top: Figure, bottom: Figure) -> float:
    """top / bottom: the median of the per-round ratios when both were measured in the same
    rounds, else the ratio of the medians."""
    if len(top.samples) == len(bottom.samples):
        return statistics.median(t / b for t, b in zip(top.samples, bottom.samples, strict=True))
    return top.median / bottom.median


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
