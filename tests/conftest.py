from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from backends import FACTORIES, default_backends

from runstore import DataStorage

NewStore = Callable[[], Awaitable[DataStorage]]


_CHILD_TMP = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """Processes the tests start (Chromium, Node, scripts) keep their temporary files in one
    folder that is removed at the end, so no run leaves files in the system temp folder."""
    tempfile.gettempdir()  # this process keeps the system's (pytest cleans its own tmp_path)
    folder = tempfile.mkdtemp(prefix="runstore-tests-")
    os.chmod(folder, 0o1777)  # like /tmp: servers run as another user (postgres) write there too
    config.stash[_CHILD_TMP] = folder
    os.environ["TMPDIR"] = folder
    config.addinivalue_line(
        "markers", "reference(name): runs the framework's own implementation NAME, not runstore"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked ``reference(NAME)`` runs a framework's own implementation, not runstore:
    the mark becomes the test's ``reference`` property in the JUnit XML, so scripts/test reports
    its failure as an environment problem, apart from runstore's."""
    for item in items:
        mark = item.get_closest_marker("reference")
        if mark is not None:
            item.user_properties.append(("reference", str(mark.args[0])))


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = config.stash.get(_CHILD_TMP, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backends",
        default=None,
        help=f"comma-separated backends for tests/contract (known: {', '.join(FACTORIES)})",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        option = metafunc.config.getoption("--backends")
        names = option.split(",") if option else default_backends()
        unknown = sorted(set(names) - set(FACTORIES))
        if unknown:
            raise pytest.UsageError(f"unknown backend(s) {unknown}; known: {sorted(FACTORIES)}")
        metafunc.parametrize("backend", names)


@pytest.fixture
async def new_store(backend: str, tmp_path: Path) -> AsyncIterator[NewStore]:
    """Makes fresh, empty stores of the backend under test; closes them afterwards."""
    made: list[DataStorage] = []
    counter = itertools.count()

    async def make() -> DataStorage:
        folder = tmp_path / f"store{next(counter)}"
        folder.mkdir()
        store = await FACTORIES[backend](folder)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.close()


@pytest.fixture
async def store(new_store: NewStore) -> DataStorage:
    return await new_store()
