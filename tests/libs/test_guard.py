"""count_queries against the real PostgreSQL database and a local HTTP server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from edulink.db import create_engine
from edulink.http import ServiceClient
from edulink.testing.guard import count_queries
from tests.libs.local_server import running_server


@pytest.fixture(scope="module")
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url, pool_size=1)
    # Connect once so the dialect's first-connect queries run before any test.
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))
    yield engine
    engine.dispose()


def ok_app(environ: dict[str, Any], start_response: Any) -> Any:
    response = Response(json.dumps({"ok": True}), mimetype="application/json")
    return response(environ, start_response)


@pytest.fixture(scope="module")
def client() -> Iterator[ServiceClient]:
    with running_server(ok_app) as base_url, ServiceClient(base_url) as client:
        yield client


def test_guard_counts_statements(engine: Engine) -> None:
    with count_queries(engine) as counter, engine.connect() as connection:
        for number in range(3):
            connection.execute(sa.text("SELECT :n"), {"n": number})

    assert counter.statements == 3
    assert counter.recorded_statements == ["SELECT %(n)s"] * 3


def test_guard_counts_executemany_once(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(sa.text("CREATE TEMPORARY TABLE guard_items (n int)"))

        with count_queries(engine) as counter:
            connection.execute(
                sa.text("INSERT INTO guard_items (n) VALUES (:n)"),
                [{"n": number} for number in range(10)],
            )

    assert counter.statements == 1


def test_guard_counts_orm_session(engine: Engine) -> None:
    with count_queries(engine) as counter, Session(engine) as session:
        session.execute(sa.select(sa.literal(1)))
        session.execute(sa.select(sa.literal(2)))
        session.commit()

    assert counter.statements == 2


def test_guard_stops_counting_after_block(engine: Engine) -> None:
    with count_queries(engine) as counter, engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))

    with engine.connect() as connection:
        connection.execute(sa.text("SELECT 2"))

    assert counter.statements == 1


def test_guard_nested_counters_both_count(engine: Engine) -> None:
    with count_queries(engine) as outer, engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))
        with count_queries(engine) as inner:
            connection.execute(sa.text("SELECT 2"))

    assert outer.statements == 2
    assert inner.statements == 1


def test_assert_max_passes_within_limit(engine: Engine) -> None:
    with count_queries(engine) as counter, engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))

    counter.assert_max(statements=1, calls=0)


def test_assert_max_lists_statements_on_failure(engine: Engine) -> None:
    with count_queries(engine) as counter, engine.connect() as connection:
        connection.execute(sa.text("SELECT 'first'"))
        connection.execute(sa.text("SELECT\n    'second'"))

    with pytest.raises(AssertionError) as caught:
        counter.assert_max(statements=1)

    message = str(caught.value)
    assert "expected at most 1 SQL statements, got 2" in message
    assert "1. SELECT 'first'" in message
    assert "2. SELECT 'second'" in message


def test_guard_counts_service_calls(engine: Engine, client: ServiceClient) -> None:
    with count_queries(engine) as counter:
        client.get_json("/a")
        client.post_json("/b", {"x": 1})

    assert counter.calls == 2
    assert counter.statements == 0


def test_guard_counts_calls_without_engine(client: ServiceClient) -> None:
    with count_queries() as counter:
        client.get_json("/students/1")

    assert counter.calls == 1


def test_assert_max_lists_calls_on_failure(client: ServiceClient) -> None:
    with count_queries() as counter:
        client.get_json("/students/1")

    with pytest.raises(AssertionError) as caught:
        counter.assert_max(calls=0)

    message = str(caught.value)
    assert "expected at most 0 service calls, got 1" in message
    assert "1. GET /students/1 on 127.0.0.1" in message
