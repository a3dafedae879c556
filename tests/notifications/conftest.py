"""Fixtures for the notifications service.

The app runs in-process with the stand-in publisher and sender
(``REALTIME_BACKEND=memory``, ``EMAIL_BACKEND=memory``), and jobs run in this
process with a burst worker. Tests of the real Pusher server, SMTP and worker
processes build on the helpers in ``tests.notifications.helpers``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from edulink.auth import Role
from edulink.jobs.schema import QUEUE_LOG_TABLE, QUEUE_TABLE, install, job_table
from edulink.migrations import upgrade
from edulink.testing.tokens import TokenFactory
from notifications.app import MIGRATIONS_DIR, create_app
from notifications.jobs import PUBLISHER_EXTENSION, SENDER_EXTENSION
from notifications.mail import MemorySender
from notifications.models import SCHEMA, Base
from notifications.realtime import MemoryPublisher
from tests.notifications.helpers import run_jobs

CURSOR_SECRET = "test-cursor-secret-notifications"


@pytest.fixture(scope="session")
def tokens() -> Iterator[TokenFactory]:
    with TokenFactory() as factory:
        yield factory


@pytest.fixture(scope="session")
def migrated_database(database_url: str) -> str:
    install(database_url)
    upgrade(MIGRATIONS_DIR, database_url, SCHEMA)
    return database_url


@pytest.fixture(scope="session")
def app_settings(migrated_database: str, tokens: TokenFactory) -> dict[str, Any]:
    """Settings every test app shares; tests add the Pusher and SMTP ones."""
    return {
        "database_url": migrated_database,
        "jwt_issuer": tokens.issuer,
        "jwt_audience": tokens.audience,
        "jwks_file": str(tokens.jwks_path),
        "cursor_secret": CURSOR_SECRET,
        "app_url": "https://app.edulink.test",
    }


@pytest.fixture(scope="session")
def notifications_app(app_settings: dict[str, Any]) -> Flask:
    app = create_app(**app_settings, realtime_backend="memory", email_backend="memory")
    app.config["TESTING"] = True
    return app


@pytest.fixture
def publisher(notifications_app: Flask) -> MemoryPublisher:
    stand_in = notifications_app.extensions[PUBLISHER_EXTENSION]
    stand_in.clear()
    return stand_in


@pytest.fixture
def sender(notifications_app: Flask) -> MemorySender:
    stand_in = notifications_app.extensions[SENDER_EXTENSION]
    stand_in.messages.clear()
    return stand_in


@pytest.fixture(autouse=True)
def _empty_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "migrated_database" not in request.fixturenames:
        return
    tables = [f"{SCHEMA}.{t.name}" for t in reversed(Base.metadata.sorted_tables)]
    tables += [job_table.fullname, QUEUE_TABLE, QUEUE_LOG_TABLE]
    engine = sa.create_engine(
        request.getfixturevalue("migrated_database").replace(
            "postgresql://", "postgresql+psycopg://", 1
        ),
        poolclass=sa.NullPool,
    )
    with engine.begin() as connection:
        for table in tables:
            connection.execute(sa.text(f"DELETE FROM {table}"))
    engine.dispose()


@pytest.fixture
def client(notifications_app: Flask) -> FlaskClient:
    return notifications_app.test_client()


@pytest.fixture
def jobs(notifications_app: Flask) -> Callable[[], None]:
    """Run the app's queued jobs in this process until none is ready."""
    return lambda: run_jobs(notifications_app)


class Person:
    """A user with a stable id, a role and organisations, who mints fresh tokens."""

    def __init__(self, tokens: TokenFactory, role: Role, **claims: Any) -> None:
        self.user_id = uuid.uuid4()
        self.role = role
        self.claims = claims
        self._tokens = tokens

    @property
    def headers(self) -> dict[str, str]:
        token = self._tokens.mint(self.role, subject=self.user_id, **self.claims)
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def person(tokens: TokenFactory) -> Callable[..., Person]:
    def make(role: Role, **claims: Any) -> Person:
        return Person(tokens, role, **claims)

    return make
