"""Create and drop throwaway PostgreSQL databases for test runs."""

from __future__ import annotations

import uuid

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from edulink.db import sqlalchemy_url


def _server_url(url: str) -> tuple[str, str]:
    """Split ``url`` into a libpq URL of the server and the database name."""
    parsed = make_url(sqlalchemy_url(url))
    name = parsed.database or "edulink"
    server = parsed.set(drivername="postgresql", database="postgres")
    return server.render_as_string(hide_password=False), name


def create_database(server_url: str, prefix: str = "edulink_test") -> str:
    """Create a database with a unique name on the server of ``server_url``.

    Returns the new database's URL.
    """
    maintenance, _ = _server_url(server_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(maintenance, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    parsed = make_url(sqlalchemy_url(server_url)).set(
        drivername="postgresql", database=name
    )
    return parsed.render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop the database of ``url``, ending any connections still open to it."""
    maintenance, name = _server_url(url)
    with psycopg.connect(maintenance, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )


def ensure_database(url: str) -> bool:
    """Create the database of ``url`` if it does not exist. Returns True if created."""
    maintenance, name = _server_url(url)
    with psycopg.connect(maintenance, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        if exists:
            return False
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True
