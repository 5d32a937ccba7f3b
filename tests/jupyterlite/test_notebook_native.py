"""The example notebook's code runs in native CPython, so the example cannot rot.

Each code cell runs in turn in one namespace, with top-level ``await`` as in the kernel. The
only kernel-specific line, ``%pip install runstore``, is dropped: here runstore is installed.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
from pathlib import Path

import pytest
from example_notebook import (
    FOUND,
    INSTALL,
    RECORDED,
    code_cells,
    exported_path,
    match_output,
    stored,
)


def without_magics(cell: str) -> str:
    lines = cell.splitlines()
    magics = [line for line in lines if line.lstrip().startswith(("%", "!"))]
    assert magics in ([], [INSTALL]), f"unexpected kernel-only lines: {magics}"
    return "\n".join(line for line in lines if line != INSTALL)


async def run_cells(cells: list[str]) -> None:
    """Run the cells in turn in one namespace and one event loop, like the kernel."""
    namespace: dict[str, object] = {"__name__": "__main__"}
    for index, cell in enumerate(cells):
        code = compile(
            without_magics(cell), f"<cell {index}>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        )
        result = eval(code, namespace)  # a coroutine when the cell has a top-level await
        if inspect.iscoroutine(result):
            await result


def test_notebook_runs_natively(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # the notebook keeps its store and export in its folder
    cells = code_cells()
    assert cells[0].strip() == INSTALL, "the notebook starts by installing runstore"
    asyncio.run(run_cells(cells))
    found = match_output(capsys.readouterr().out)
    assert stored(found) == RECORDED
    export = Path(exported_path(found))
    assert export == tmp_path / "runstore-export.json"
    document = json.loads(export.read_text(encoding="utf-8"))
    assert document["format"] == "runstore.export"

    # A second run (a new kernel) finds the conversation instead of recording it again.
    asyncio.run(run_cells(cells))
    again = match_output(capsys.readouterr().out)
    assert stored(again) == FOUND
    assert json.loads(export.read_text(encoding="utf-8")) == document
