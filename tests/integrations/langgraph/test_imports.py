"""`import runstore` (and its integrations package) imports no framework, even where one is
installed, as here."""

from __future__ import annotations

import subprocess
import sys

import langgraph.checkpoint.base  # noqa: F401  (the framework is installed in this venv)

CHECK = """
import sys
import runstore, runstore.integrations
store = runstore.InMemoryDataStorage()
frameworks = {"langgraph", "langchain_core", "google"}
loaded = sorted(m for m in sys.modules if m.split(".")[0] in frameworks)
print(loaded)
"""


def test_import_runstore_loads_no_framework() -> None:
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
