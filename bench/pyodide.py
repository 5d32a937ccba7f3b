"""Pyodide (Node): wheel size, micropip install + import time next to Pyodide's own boot, and
the in-memory chat turn inside Pyodide next to native CPython in this same run."""

from __future__ import annotations

from .extras import Line
from .report import Results


async def measure(results: Results) -> tuple[list[Line], str | None]:
    return [], "the Pyodide measurement piece has not landed yet"
