from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from backends import FACTORIES, default_backends

from runstore import DataStorage

NewStore = Callable[[], Awaitable[DataStorage]]


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
