"""Tables of the job system, all in the ``jobs`` schema, and their installer.

pgqueuer owns the queue itself (``jobs.pgqueuer``, its log, statistics and
schedules). ``jobs.job`` is ours: one row per job with the RQ-style id, the
job type, the final status, the last error and the run count. Services never
migrate these tables. :func:`install` creates or upgrades them before service
migrations run.
"""

from __future__ import annotations

import asyncio
import logging

import psycopg
import sqlalchemy as sa
from pgqueuer.adapters.drivers.psycopg import PsycopgDriver
from pgqueuer.adapters.persistence.qb import (
    QueryBuilderEnvironment,
    QueryQueueBuilder,
    QuerySchedulerBuilder,
)
from pgqueuer.adapters.persistence.queries import Queries
from pgqueuer.domain.settings import DBSettings
from pgqueuer.ports.driver import Driver
from psycopg.rows import dict_row
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from edulink.db import NAMING_CONVENTION, create_engine, sqlalchemy_url

log = logging.getLogger(__name__)

SCHEMA = "jobs"

# Explicit settings instead of pgqueuer's environment-driven defaults, so that
# every process agrees on where the queue lives, whatever PGQUEUER_* contains.
PGQUEUER_SETTINGS = DBSettings(db_schema=SCHEMA)
QUEUE_TABLE = PGQUEUER_SETTINGS.qualified.queue_table
QUEUE_SQL = QueryQueueBuilder(settings=PGQUEUER_SETTINGS)
QUEUE_LOG_TABLE = PGQUEUER_SETTINGS.qualified.queue_table_log

# Serialises concurrent installers, e.g. several services starting at once.
_INSTALL_LOCK_KEY = 0x65646A6F62730001

metadata = sa.MetaData(schema=SCHEMA, naming_convention=NAMING_CONVENTION)

job_table = sa.Table(
    "job",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("queue_job_id", sa.BigInteger, nullable=False, unique=True),
    sa.Column("queue", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="queued"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("payload", JSONB, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("exc_info", sa.Text),
    sa.Column("request_id", sa.Text),
    sa.Column("actor", sa.Text),
    sa.Column(
        "enqueued_at",
        sa.DateTime(timezone=True),
        nullable=False,
        server_default=sa.func.now(),
    ),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint(
        "status IN ('queued', 'finished', 'failed', 'canceled')", name="status"
    ),
    sa.Index("ix_job_queue_status", "queue", "status"),
)


def queue_builders() -> dict[str, object]:
    """Return the pgqueuer query builders bound to the ``jobs`` schema."""
    return {
        "qbe": QueryBuilderEnvironment(settings=PGQUEUER_SETTINGS),
        "qbq": QueryQueueBuilder(settings=PGQUEUER_SETTINGS),
        "qbs": QuerySchedulerBuilder(settings=PGQUEUER_SETTINGS),
    }


def pgqueuer_queries(driver: Driver) -> Queries:
    """Build pgqueuer's repository over ``driver``, pointed at the ``jobs`` schema."""
    return Queries(driver, **queue_builders())  # type: ignore[arg-type]


class SessionDriver:
    """pgqueuer's synchronous driver port over the connection of a SQLAlchemy session.

    pgqueuer's own sync driver insists on autocommit; this one runs pgqueuer's
    SQL inside the session's open transaction, which is the point.
    """

    def __init__(self, session: Session) -> None:
        connection = session.connection().connection.driver_connection
        assert isinstance(connection, psycopg.Connection), "edulink.db uses psycopg 3"
        self._connection = connection

    def fetch(self, query: str, *args: object) -> list[dict[str, object]]:
        with psycopg.RawCursor(self._connection, row_factory=dict_row) as cursor:
            cursor.execute(query, args or None)
            return cursor.fetchall() if cursor.description else []


def libpq_url(url: str) -> str:
    """Turn a SQLAlchemy or libpq PostgreSQL URL into one psycopg accepts."""
    return "postgresql://" + sqlalchemy_url(url).removeprefix("postgresql+psycopg://")


def install(url: str) -> None:
    """Create or upgrade pgqueuer's tables and ``jobs.job`` in the database at ``url``.

    Safe to run again and from several processes at once: an advisory lock
    serialises installers, pgqueuer's own upgrade brings an older queue schema
    up to date, and existing tables are left alone.
    """
    asyncio.run(_install(libpq_url(url)))
    engine = create_engine(url, pool_size=1, application_name="edulink-jobs-install")
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.select(sa.func.pg_advisory_xact_lock(_INSTALL_LOCK_KEY))
            )
            metadata.create_all(connection, checkfirst=True)
    finally:
        engine.dispose()
    log.info("job tables installed in schema %s", SCHEMA)


async def _install(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, application_name="edulink-jobs-install"
    ) as connection:
        await connection.execute("SELECT pg_advisory_lock(%s)", (_INSTALL_LOCK_KEY,))
        try:
            queries = pgqueuer_queries(PsycopgDriver(connection))
            if await queries.schema_is_installed():
                plan = await queries.apply_upgrade()
                if plan.statements:
                    log.info(
                        "pgqueuer schema upgraded: %d statements", len(plan.statements)
                    )
            else:
                await queries.install()
                log.info("pgqueuer schema installed in %s", SCHEMA)
        finally:
            await connection.execute(
                "SELECT pg_advisory_unlock(%s)", (_INSTALL_LOCK_KEY,)
            )
