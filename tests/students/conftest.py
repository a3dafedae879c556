"""Fixtures for the students service: a migrated schema, an app, callers' tokens."""

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
from students.app import MIGRATIONS_DIR, create_app
from students.db import db
from students.models import LEDGER, SCHEMA, Base

CURSOR_SECRET = "test-cursor-secret-0123456789"


@pytest.fixture(scope="session")
def tokens() -> Iterator[TokenFactory]:
    with TokenFactory() as factory:
        yield factory


@pytest.fixture(scope="session")
def students_app(database_url: str, tokens: TokenFactory) -> Flask:
    install(database_url)
    upgrade(MIGRATIONS_DIR, database_url, SCHEMA)
    app = create_app(
        database_url=database_url,
        jwt_issuer=tokens.issuer,
        jwt_audience=tokens.audience,
        jwks_file=str(tokens.jwks_path),
        cursor_secret=CURSOR_SECRET,
    )
    app.config["TESTING"] = True
    return app


@pytest.fixture(autouse=True)
def _empty_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "students_app" not in request.fixturenames:
        return
    # DELETE on these small tables is several times faster than TRUNCATE,
    # which has to rewrite every table's files.
    assert db.engine is not None
    with db.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            if table is LEDGER.table:
                # The ledger rejects DELETE, and allows TRUNCATE for tests.
                connection.execute(sa.text(f"TRUNCATE {table.fullname}"))
            else:
                connection.execute(table.delete())
        for name in (job_table.fullname, QUEUE_TABLE, QUEUE_LOG_TABLE):
            connection.execute(sa.text(f"DELETE FROM {name}"))


@pytest.fixture
def client(students_app: Flask) -> FlaskClient:
    return students_app.test_client()


Auth = Callable[..., dict[str, str]]


@pytest.fixture
def auth(tokens: TokenFactory) -> Auth:
    """Build request headers carrying a fresh token for ``role``."""

    def headers(role: Role | str, **claims: Any) -> dict[str, str]:
        if role == Role.service:
            token = tokens.service_token(claims.pop("subject", "internships"))
        else:
            token = tokens.mint(role, **claims)
        return {"Authorization": f"Bearer {token}"}

    return headers


class Person:
    """A user with a stable id and role, for tests that act as several people."""

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
