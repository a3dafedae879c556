"""Liveness and readiness: /readyz reports 503 until the schema is at head."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from edulink.migrations import head_revision, upgrade
from edulink.testing.databases import create_database, drop_database
from students.app import MIGRATIONS_DIR, create_app
from students.db import db
from students.models import SCHEMA
from tests.conftest import SERVER_URL
from tests.students.conftest import CURSOR_SECRET
from tests.students.helpers import PROBLEM_JSON


def _app_against(database_url: str, tokens) -> Flask:
    return create_app(
        database_url=database_url,
        jwt_issuer=tokens.issuer,
        jwt_audience=tokens.audience,
        jwks_file=str(tokens.jwks_path),
        cursor_secret=CURSOR_SECRET,
    )


@pytest.fixture
def restore_database_handle(students_app) -> Iterator[None]:
    """Point ``students.db.db`` back at the suite's database after the test.

    NOTE: ``db`` is one module-level object, and every ``create_app`` call
    replaces its engine, so a second app re-points the first one too.
    """
    engine, sessionmaker = db.engine, db.sessionmaker
    yield
    if db.engine is not engine:
        assert db.engine is not None
        db.engine.dispose()
    db.engine, db.sessionmaker = engine, sessionmaker


@pytest.fixture
def empty_database(restore_database_handle) -> Iterator[str]:
    url = create_database(SERVER_URL, prefix="edulink_test_empty")
    try:
        yield url
    finally:
        if db.engine is not None:
            db.engine.dispose()
        drop_database(url)


def test_healthz_is_200(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_200_when_migrated(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.get_json()["revision"] == head_revision(MIGRATIONS_DIR)


def test_health_needs_no_token(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_readyz_is_503_without_schema(tokens, empty_database):
    app = _app_against(empty_database, tokens)

    response = app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.mimetype == PROBLEM_JSON
    assert "db upgrade" in response.get_json()["detail"]
    assert response.get_json()["request_id"] == response.headers["X-Request-ID"]


def test_healthz_is_200_without_schema(tokens, empty_database):
    app = _app_against(empty_database, tokens)

    response = app.test_client().get("/healthz")

    assert response.status_code == 200


def test_readyz_is_200_after_upgrade(tokens, empty_database):
    app = _app_against(empty_database, tokens)
    client = app.test_client()
    assert client.get("/readyz").status_code == 503

    upgrade(MIGRATIONS_DIR, empty_database, SCHEMA)

    assert client.get("/readyz").status_code == 200


def test_readyz_is_503_when_unreachable(tokens, restore_database_handle):
    # Nothing listens on port 1 of the loopback address, so connecting is refused.
    app = _app_against("postgresql://root@127.0.0.1:1/edulink", tokens)

    response = app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.mimetype == PROBLEM_JSON
    assert "unreachable" in response.get_json()["detail"]


def test_suite_database_still_ready(client):
    """The apps built above must not leave the suite's app pointing elsewhere."""
    response = client.get("/readyz")

    assert response.status_code == 200
