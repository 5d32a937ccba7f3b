"""Fixtures for the PostgreSQL-specific tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from pg_helpers import Workers
from pg_server import shared_dsn


@pytest.fixture
def dsn() -> str:
    return shared_dsn()


@pytest.fixture
def schema() -> str:
    """A schema name no other test uses (created by the store on first use)."""
    return f"pgtest_{uuid.uuid4().hex[:20]}"


@pytest.fixture
async def workers(dsn: str) -> AsyncIterator[Workers]:
    yield Workers(dsn)
