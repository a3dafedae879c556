"""Fixtures for job tests: installed job tables, sessions, and in-process workers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from edulink.db import create_engine
from edulink.jobs import JobRegistry, Worker, WorkerOptions
from edulink.jobs.schema import install
from tests.libs.jobs import sample_app

# Short timeouts so retries and re-runs happen within a test's time budget.
FAST_OPTIONS = WorkerOptions(
    concurrency=4, heartbeat_timeout=2.0, dequeue_timeout=0.2, drain_timeout=5.0
)


@pytest.fixture(scope="session")
def jobs_database_url(database_url: str) -> str:
    """The test database with pgqueuer's tables and ``jobs.job`` installed."""
    install(database_url)
    return database_url


@pytest.fixture(scope="session")
def jobs_engine(jobs_database_url: str) -> Iterator[Engine]:
    engine = create_engine(jobs_database_url, pool_size=8)
    with engine.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {sample_app.SCHEMA}"))
        sample_app.Base.metadata.create_all(connection)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def sessions(jobs_engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(jobs_engine, expire_on_commit=False)


@pytest.fixture
def queue_name() -> str:
    """A queue of the test's own, so tests never see each other's jobs."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def run_burst(
    jobs_database_url: str, sessions: sessionmaker[Session]
) -> Callable[..., None]:
    """Run a worker for ``registry`` in this process until its queue is empty."""

    def run(registry: JobRegistry, options: WorkerOptions = FAST_OPTIONS) -> None:
        worker = Worker(
            registry, database_url=jobs_database_url, sessions=sessions, options=options
        )
        worker.run(burst=True)

    return run


def effect_count(sessions: sessionmaker[Session], key: str) -> int:
    with sessions() as session:
        return sample_app.count_effects(session, key)


def scalar(sessions: sessionmaker[Session], sql: str, **params: object) -> object:
    with sessions() as session:
        return session.execute(sa.text(sql), params).scalar()
