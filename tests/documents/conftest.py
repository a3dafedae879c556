"""Fixtures for the documents service.

The documents app runs in-process (Flask test client) and its worker runs in
bursts in this process; renders still happen in child processes. The
internships and students services it reads are the real apps, served over
HTTP on 127.0.0.1 from threads, on the same test database.

Rendering costs about 0.1 to 0.5 s a document, so the placements and their
documents are built once per module (:func:`placements`) and shared by its
tests, and the tables are emptied when the module ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

import documents.app
import internships.app
import students.app
from documents.db import db
from documents.jobs import registry as documents_registry
from documents.models import SCHEMA, Base
from edulink.auth import Role
from edulink.jobs import Worker, WorkerOptions
from edulink.jobs.schema import QUEUE_LOG_TABLE, QUEUE_TABLE, install, job_table
from edulink.migrations import upgrade
from edulink.testing.tokens import TokenFactory
from internships.jobs import registry as internships_registry
from internships.models import SCHEMA as INTERNSHIPS_SCHEMA
from internships.models import Base as InternshipsBase
from students.models import SCHEMA as STUDENTS_SCHEMA
from students.models import Base as StudentsBase
from tests.documents.helpers import (
    Listener,
    Person,
    World,
    build_world,
    queued_jobs,
)
from tests.libs.local_server import running_server

CURSOR_SECRET = "test-cursor-secret-documents"
PUBLIC_BASE_URL = "https://edulink.test"
DAY = 24 * 3600

FAST_WORKER = WorkerOptions(
    concurrency=2, heartbeat_timeout=5.0, dequeue_timeout=0.2, drain_timeout=5.0
)


@pytest.fixture(scope="session")
def tokens() -> Iterator[TokenFactory]:
    with TokenFactory() as factory:
        yield factory


def _settings(database_url: str, tokens: TokenFactory) -> dict[str, Any]:
    return {
        "database_url": database_url,
        "jwt_issuer": tokens.issuer,
        "jwt_audience": tokens.audience,
        "jwks_file": str(tokens.jwks_path),
        "cursor_secret": CURSOR_SECRET,
    }


@pytest.fixture(scope="session")
def students_app(database_url: str, tokens: TokenFactory) -> Flask:
    upgrade(students.app.MIGRATIONS_DIR, database_url, STUDENTS_SCHEMA)
    app = students.app.create_app(**_settings(database_url, tokens))
    app.config["TESTING"] = True
    return app


@pytest.fixture(scope="session")
def students_server(students_app: Flask) -> Iterator[str]:
    with running_server(students_app) as url:
        yield url


@pytest.fixture(scope="session")
def internships_app(
    database_url: str, tokens: TokenFactory, students_server: str
) -> Flask:
    install(database_url)
    upgrade(internships.app.MIGRATIONS_DIR, database_url, INTERNSHIPS_SCHEMA)
    app = internships.app.create_app(
        **_settings(database_url, tokens),
        students_url=students_server,
        service_token=tokens.service_token("internships", expires_in=DAY),
    )
    app.config["TESTING"] = True
    return app


@pytest.fixture(scope="session")
def internships_server(internships_app: Flask) -> Iterator[str]:
    with running_server(internships_app) as url:
        yield url


@pytest.fixture(scope="session")
def documents_app(
    database_url: str,
    tokens: TokenFactory,
    students_server: str,
    internships_server: str,
) -> Flask:
    upgrade(documents.app.MIGRATIONS_DIR, database_url, SCHEMA)
    app = documents.app.create_app(
        **_settings(database_url, tokens),
        students_url=students_server,
        internships_url=internships_server,
        public_base_url=PUBLIC_BASE_URL,
        service_token=tokens.service_token("documents", expires_in=DAY),
    )
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(documents_app: Flask) -> FlaskClient:
    return documents_app.test_client()


@pytest.fixture(scope="module")
def run_worker(documents_app: Flask, internships_app: Flask) -> Callable[[], None]:
    """Run the internships worker, then the documents worker, until both are idle.

    The internships worker appends its ledger, which performance summaries
    read; the documents worker renders.
    """

    def run() -> None:
        for _round in range(3):
            Worker.for_app(internships_app, internships_registry, FAST_WORKER).run(
                burst=True
            )
            Worker.for_app(documents_app, documents_registry, FAST_WORKER).run(
                burst=True
            )
            if not queued_jobs("documents") and not queued_jobs("internships"):
                return

    return run


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    """A TCP listener on a loopback port that records every connection to it."""
    with Listener() as server:
        yield server


@pytest.fixture(scope="module")
def world(
    documents_app: Flask,
    internships_app: Flask,
    students_app: Flask,
    tokens: TokenFactory,
    listener: Listener,
) -> Iterator[World]:
    """An institution, an employer and two students with placements, for one module.

    Amina's placement is CERTIFIED and Baraka's ACCEPTED. Amina's cover
    letter carries markup that points at ``listener``.
    """
    world = build_world(
        internships=internships_app.test_client(),
        students=students_app.test_client(),
        tokens=tokens,
        hostile_url=listener.url,
    )
    yield world
    _empty_tables()


def _empty_tables() -> None:
    tables = [f"{SCHEMA}.{table.name}" for table in Base.metadata.sorted_tables]
    tables += [
        f"{INTERNSHIPS_SCHEMA}.{table.name}"
        for table in InternshipsBase.metadata.sorted_tables
    ]
    tables += [
        f"{STUDENTS_SCHEMA}.{table.name}"
        for table in StudentsBase.metadata.sorted_tables
    ]
    tables += [job_table.fullname, QUEUE_TABLE, QUEUE_LOG_TABLE]
    assert db.engine is not None
    with db.engine.begin() as connection:
        # TRUNCATE, because the ledgers reject DELETE.
        connection.execute(sa.text(f"TRUNCATE {', '.join(tables)} CASCADE"))


@pytest.fixture
def person(tokens: TokenFactory) -> Callable[..., Person]:
    def make(role: Role, **claims: Any) -> Person:
        return Person(tokens, role, user_id=uuid.uuid4(), **claims)

    return make
