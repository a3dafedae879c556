"""Check that the bare baseline sends the service's SQL and returns its JSON.

Both apps run in this process with Flask test clients. Every statement that
reaches the database cursor is recorded through SQLAlchemy's
``before_cursor_execute`` event and compared with whitespace collapsed.
Pool pings, BEGIN and ROLLBACK bypass that event. Both apps get them from
``edulink.db.create_engine`` and psycopg, so they match as well.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from bench.students import baseline
from students.app import create_app
from students.db import db

log = logging.getLogger(__name__)


class MismatchError(AssertionError):
    """The baseline's SQL or response differs from the service's."""


@contextmanager
def recorded_statements(engine: Engine) -> Iterator[list[str]]:
    """Collect the SQL of every statement ``engine`` executes inside the block."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def _fetch(
    client: FlaskClient, engine: Engine, path: str, headers: Mapping[str, str]
) -> tuple[int, Any, list[str]]:
    with recorded_statements(engine) as statements:
        response = client.get(path, headers=dict(headers))
    return response.status_code, response.get_json(), statements


def compare_path(
    service: tuple[FlaskClient, Engine],
    bare: tuple[FlaskClient, Engine],
    path: str,
    headers: Mapping[str, str],
) -> None:
    """Raise :class:`MismatchError` unless both apps return the same for ``path``."""
    service_status, service_body, service_sql = _fetch(*service, path, headers)
    bare_status, bare_body, bare_sql = _fetch(*bare, path, {})
    if service_status != 200 or bare_status != 200:
        raise MismatchError(
            f"GET {path[:80]} returned {service_status} from the service and "
            f"{bare_status} from the baseline; both must return 200."
        )
    if service_sql != bare_sql:
        raise MismatchError(
            f"GET {path[:80]} sent different SQL.\n"
            f"service:  {service_sql}\nbaseline: {bare_sql}"
        )
    if service_body != bare_body:
        raise MismatchError(f"GET {path[:80]} returned different JSON bodies.")


def check_baseline(
    *,
    settings: Mapping[str, str],
    cases: Sequence[tuple[str, Mapping[str, str]]],
) -> None:
    """Compare both apps on each ``(path, headers)`` case.

    ``settings`` are the service's settings by field name; the baseline reads
    only ``database_url``.
    """
    service_app = create_app(**settings)
    assert db.engine is not None
    bare_app = baseline.create_app(settings["database_url"])
    bare_engine: Engine = bare_app.extensions[baseline.ENGINE_EXTENSION]
    try:
        for path, headers in cases:
            compare_path(
                (service_app.test_client(), db.engine),
                (bare_app.test_client(), bare_engine),
                path,
                headers,
            )
    finally:
        db.engine.dispose()
        bare_engine.dispose()
    log.info("baseline sends the same SQL and JSON for %d requests", len(cases))
