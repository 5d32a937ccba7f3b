"""Runs pytest INSIDE Pyodide and reports the result as JSON (used by test_pyodide.py).

``main(root, args)`` runs ``pytest.main(args)`` from ``root`` (a copy of the repository's
``pyproject.toml`` and ``tests/`` in Pyodide's file system) with the ``noio_loop`` plugin, and
returns ``{"exit": code, "outcomes": {nodeid: outcome}, "output": text}``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys

import pytest


class _Outcomes:
    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # Passed only if setup, call and teardown all passed; a skip is not a pass.
        if report.failed:
            self.outcomes[report.nodeid] = "failed" if report.when == "call" else "error"
        elif report.skipped:
            self.outcomes[report.nodeid] = "skipped"
        elif report.when == "call":
            self.outcomes.setdefault(report.nodeid, "passed")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.outcomes[report.nodeid or "<collection>"] = "collection error"


def main(root: str, args: list[str]) -> str:
    os.chdir(root)
    plugin_dir = os.path.join(root, "tests", "pyodide")
    if plugin_dir not in sys.path:
        sys.path.insert(0, plugin_dir)
    outcomes = _Outcomes()
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = pytest.main(
            ["-p", "no:cacheprovider", "-p", "noio_loop", "--capture=sys", "--color=no", *args],
            plugins=[outcomes],
        )
    return json.dumps({"exit": int(code), "outcomes": outcomes.outcomes, "output": out.getvalue()})
