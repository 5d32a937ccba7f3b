"""Settings for the pytest-pyodide tests (run by scripts/test with --dist-dir build/pyodide).

Chrome: Debian's chromium, driven by /usr/bin/chromedriver (``SE_CHROMEDRIVER``, read by
Selenium, so Selenium Manager downloads nothing), headless with the flags this machine needs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pytest_pyodide import get_global_config

CHROME_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
CHROMEDRIVER = "/usr/bin/chromedriver"


def pytest_configure(config: pytest.Config) -> None:
    settings = get_global_config()
    flags = settings.get_flags("chrome")
    settings.set_flags("chrome", [*flags, *(f for f in CHROME_FLAGS if f not in flags)])
    if "SE_CHROMEDRIVER" not in os.environ and Path(CHROMEDRIVER).exists():
        os.environ["SE_CHROMEDRIVER"] = CHROMEDRIVER


@pytest.fixture(scope="session")
def dist_dir(request: pytest.FixtureRequest) -> Path:
    """The assembled Pyodide folder (scripts/assemble_pyodide.py --wheel build/wheel/...)."""
    folder = Path(request.config.getoption("--dist-dir")).resolve()
    lock = folder / "pyodide-lock.json"
    if not lock.exists():
        raise pytest.UsageError(f"{folder} is not an assembled Pyodide: run scripts/test")
    if "runstore" not in json.loads(lock.read_text())["packages"]:
        raise pytest.UsageError(f"{lock} lacks runstore: assemble it with --wheel")
    return folder


@pytest.fixture(scope="session")
def wheel(dist_dir: Path) -> Path:
    """The runstore wheel shipped in the assembled Pyodide folder."""
    (found,) = dist_dir.glob("runstore-*-py3-none-any.whl")
    return found
