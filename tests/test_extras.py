"""A backend whose extra is not installed says which extra to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_postgres_without_asyncpg_names_the_extra() -> None:
    script = """
        import sys
        sys.modules["asyncpg"] = None  # as if it were not installed
        import runstore
        try:
            runstore.PostgresDataStorage("postgresql://localhost/x")
        except ModuleNotFoundError as exc:
            print(exc.name, "|", exc)
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    name, message = result.stdout.strip().split(" | ")
    assert name == "asyncpg"
    assert "pip install asyncpg" in message  # works before runstore is on PyPI
