"""Fixtures shared by the whole suite.

The suite runs against a real PostgreSQL server (``TEST_DATABASE_URL``,
default ``postgresql://root@127.0.0.1:5432/postgres``). Each pytest process
creates its own throwaway database and drops it at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from edulink.testing.databases import create_database, drop_database

SERVER_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql://root@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """URL of a fresh, empty database that lives for the whole test session."""
    url = create_database(SERVER_URL)
    try:
        yield url
    finally:
        drop_database(url)
