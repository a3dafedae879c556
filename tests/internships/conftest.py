"""Fixtures for the internships service.

The internships app runs in-process (Flask test client). The students service
it reads snapshots from is the real students app, served over HTTP on
127.0.0.1 from a thread, against the same test database.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

import students.app
from edulink.auth import Role
from edulink.jobs.schema import QUEUE_LOG_TABLE, QUEUE_TABLE, install, job_table
from edulink.migrations import upgrade
from edulink.testing.tokens import TokenFactory
from internships.app import MIGRATIONS_DIR, create_app
from internships.db import db
from internships.models import LEDGER, SCHEMA, Base
from students.models import SCHEMA as STUDENTS_SCHEMA
from students.models import Base as StudentsBase
from tests.internships.helpers import (
    World,
    create_employer,
    create_institution,
    create_student_profile,
    open_opportunity,
)
from tests.libs.local_server import running_server

CURSOR_SECRET = "test-cursor-secret-internships"


@pytest.fixture(scope="session")
def tokens() -> Iterator[TokenFactory]:
    with TokenFactory() as factory:
        yield factory


@pytest.fixture(scope="session")
def students_service_app(database_url: str, tokens: TokenFactory) -> Flask:
    """The real students app on the test database."""
    upgrade(students.app.MIGRATIONS_DIR, database_url, STUDENTS_SCHEMA)
    app = students.app.create_app(
        database_url=database_url,
        jwt_issuer=tokens.issuer,
        jwt_audience=tokens.audience,
        jwks_file=str(tokens.jwks_path),
        cursor_secret=CURSOR_SECRET,
    )
    app.config["TESTING"] = True
    return app


@pytest.fixture(scope="session")
def students_server(students_service_app: Flask) -> Iterator[str]:
    """Base URL of the students app, served over HTTP on 127.0.0.1."""
    with running_server(students_service_app) as url:
        yield url


@pytest.fixture(scope="session")
def internships_app(
    database_url: str, tokens: TokenFactory, students_server: str
) -> Flask:
    install(database_url)
    upgrade(MIGRATIONS_DIR, database_url, SCHEMA)
    app = create_app(
        database_url=database_url,
        jwt_issuer=tokens.issuer,
        jwt_audience=tokens.audience,
        jwks_file=str(tokens.jwks_path),
        cursor_secret=CURSOR_SECRET,
        students_url=students_server,
        service_token=tokens.service_token("internships", expires_in=24 * 3600),
    )
    app.config["TESTING"] = True
    return app


@pytest.fixture(autouse=True)
def _empty_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "internships_app" not in request.fixturenames:
        return
    # DELETE is much faster than TRUNCATE on tables this small.
    tables = [f"{SCHEMA}.{t.name}" for t in reversed(Base.metadata.sorted_tables)]
    tables += [
        f"{STUDENTS_SCHEMA}.{table.name}"
        for table in reversed(StudentsBase.metadata.sorted_tables)
    ]
    tables += [job_table.fullname, QUEUE_TABLE, QUEUE_LOG_TABLE]
    assert db.engine is not None
    with db.engine.begin() as connection:
        for table in tables:
            if table == LEDGER.table.fullname:
                # The ledger rejects DELETE, and allows TRUNCATE for tests.
                connection.execute(sa.text(f"TRUNCATE {table}"))
            else:
                connection.execute(sa.text(f"DELETE FROM {table}"))


@pytest.fixture
def client(internships_app: Flask) -> FlaskClient:
    return internships_app.test_client()


@pytest.fixture
def students_client(internships_app: Flask, students_service_app: Flask) -> FlaskClient:
    """A test client of the students app, for creating profiles in tests."""
    return students_service_app.test_client()


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


@pytest.fixture
def world(
    client: FlaskClient, students_client: FlaskClient, person: Callable[..., Person]
) -> World:
    """An active employer with an OPEN opportunity and a verified student."""
    system_admin = person(Role.system_admin)
    employer = create_employer(client, system_admin)
    employer_admin = person(Role.employer_admin, org_ids=[employer["id"]])
    supervisor = person(Role.supervisor, org_ids=[employer["id"]])
    institution_id = create_institution(students_client, system_admin, "Kilima")
    institution_admin = person(Role.institution_admin, org_ids=[institution_id])
    student = person(Role.student, email="amina@kilima.example")
    create_student_profile(students_client, student, institution_id=institution_id)
    opportunity = open_opportunity(client, employer_admin, employer["id"])
    # Jobs of the set-up, such as the students service's ledger events, are
    # not under test: each test sees only the jobs its own requests enqueue.
    assert db.engine is not None
    with db.engine.begin() as connection:
        for table in (job_table.fullname, QUEUE_TABLE):
            connection.execute(sa.text(f"DELETE FROM {table}"))
    return World(
        system_admin=system_admin,
        employer_admin=employer_admin,
        supervisor=supervisor,
        institution_admin=institution_admin,
        student=student,
        employer_id=employer["id"],
        institution_id=institution_id,
        opportunity=opportunity,
    )
