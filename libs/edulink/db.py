"""SQLAlchemy 2 on psycopg 3: one engine per process, one session per request.

Every service keeps its tables in a PostgreSQL schema named after the service,
so a service's ``Base`` is built with :func:`declarative_base_for`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import sqlalchemy as sa
from flask import Flask, g
from sqlalchemy import MetaData, func
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

# Stable constraint names, so Alembic autogenerate and migrations agree.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def declarative_base_for(schema: str) -> type[DeclarativeBase]:
    """Return a declarative base whose tables live in ``schema``."""

    class Base(DeclarativeBase):
        metadata = MetaData(schema=schema, naming_convention=NAMING_CONVENTION)

    return Base


class TimestampedMixin:
    """UUID primary key, created and updated times, and an optimistic-lock version.

    ``version`` is SQLAlchemy's version counter: every UPDATE checks and bumps it,
    so a concurrent write fails with ``StaleDataError`` instead of being lost.
    """

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True),
        server_default=func.now(),
        onupdate=func.now(),
        nullable=False,
    )
    version: Mapped[int] = mapped_column(nullable=False, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


def sqlalchemy_url(url: str) -> str:
    """Point a plain ``postgresql://`` URL at the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url!r}")


def create_engine(
    url: str, *, pool_size: int = 10, application_name: str = ""
) -> Engine:
    """Create the process's engine. Dead pooled connections are replaced on checkout."""
    connect_args = {"application_name": application_name} if application_name else {}
    return sa.create_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args=connect_args,
    )


class Database:
    """Flask extension that owns the engine and hands out request-scoped sessions."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.sessionmaker: sessionmaker[Session] | None = None

    def init_app(self, app: Flask, url: str, *, pool_size: int = 10) -> None:
        self.engine = create_engine(url, pool_size=pool_size, application_name=app.name)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        app.extensions["edulink.db"] = self
        app.teardown_appcontext(self._close_session)

    @property
    def session(self) -> Session:
        """Return this request's session, opening it on first use."""
        session = g.get("_edulink_session")
        if session is None:
            assert self.sessionmaker is not None, "Database.init_app was not called"
            session = self.sessionmaker()
            g._edulink_session = session
        return session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Open a session outside a request and commit it, or roll back on error."""
        assert self.sessionmaker is not None, "Database.init_app was not called"
        with self.sessionmaker() as session, session.begin():
            yield session

    @staticmethod
    def _close_session(_error: BaseException | None) -> None:
        # Closing rolls back whatever the request did not commit.
        session = g.pop("_edulink_session", None)
        if session is not None:
            session.close()


def get_database(app: Flask) -> Database:
    return app.extensions["edulink.db"]
