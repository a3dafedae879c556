"""A small service for the job and ledger tests, shaped like a real one.

Tests use :func:`build_app` in process. Worker subprocesses run
``flask --app tests.libs.jobs.sample_app:create_app worker`` with
``SAMPLE_DATABASE_URL`` set, exactly as a service's worker starts.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pydantic
import sqlalchemy as sa
from flask import Flask
from flask_smorest import Api
from sqlalchemy.orm import Session

from edulink.auth import Principal, TokenVerifier, init_auth
from edulink.db import Database, declarative_base_for
from edulink.errors import register_error_handlers
from edulink.jobs import JobContext, JobContract, JobRegistry, Retry
from edulink.jobs.api import jobs_admin_blueprint
from edulink.jobs.cli import register_cli
from edulink.ledger import Ledger
from edulink.ledger.api import ledger_blueprint
from edulink.logs import configure_logging, init_request_ids
from edulink.pagination import CursorCodec

SCHEMA = "sample"
QUEUE = "sample"
Base = declarative_base_for(SCHEMA)

effects = sa.Table(
    "effects",
    Base.metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("job_id", sa.Text, nullable=False),
    sa.Column("request_id", sa.Text),
    sa.Column("actor", sa.Text),
)

ledger = Ledger(Base.metadata, queue=QUEUE)


class Record(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    key: str
    # Seconds to sleep after the insert, inside the job's transaction.
    sleep: float = 0.0
    # While this file exists the handler waits: after its insert when
    # hold_when is "before_commit", after the commit when "after_commit".
    hold_file: str | None = None
    hold_when: str = "before_commit"


class Tick(pydantic.BaseModel):
    pass


RECORD = JobContract("sample.record", 1, Record, consumer=QUEUE, retry=Retry(max=2))
TICK = JobContract("sample.tick", 1, Tick, consumer=QUEUE, retry=Retry(max=0))

registry = JobRegistry(QUEUE)
ledger.register_jobs(registry)


@registry.handler(RECORD)
def record(payload: Record, context: JobContext) -> None:
    context.session.execute(
        sa.insert(effects).values(
            key=payload.key,
            job_id=context.id,
            request_id=context.request_id,
            actor=context.actor,
        )
    )
    if payload.sleep:
        time.sleep(payload.sleep)
    if payload.hold_file is None:
        return
    hold = Path(payload.hold_file)
    if payload.hold_when == "after_commit":
        sa.event.listen(context.session, "after_commit", lambda _s: _wait_while(hold))
    else:
        context.session.flush()
        _wait_while(hold)


def _wait_while(path: Path, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


@registry.handler(TICK)
def tick(_payload: Tick, context: JobContext) -> None:
    context.session.execute(sa.insert(effects).values(key="tick", job_id=context.id))


if os.environ.get("SAMPLE_CRON"):
    registry.schedule(os.environ["SAMPLE_CRON"], TICK)


def owns(principal: Principal, entity_type: str, entity_id: str) -> bool:
    """Students own their own student entity, nothing else."""
    return entity_type == "student" and entity_id == principal.subject


def build_app(
    database_url: str, jwks_file: Path | None = None, name: str = "sample"
) -> Flask:
    app = Flask(name)
    app.config.update(
        API_TITLE="sample",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        TESTING=True,
    )
    app.extensions["edulink.cursor_codec"] = CursorCodec("sample-cursor-secret-123456")
    init_request_ids(app)
    database = Database()
    database.init_app(app, database_url, pool_size=4)
    if jwks_file is not None:
        verifier = TokenVerifier(
            issuer="https://identity.edulink.test",
            audience="edulink",
            jwks_file=jwks_file,
        )
        init_auth(app, verifier)
    api = Api(app)
    api.register_blueprint(
        ledger_blueprint(ledger, url_prefix="/api/v1/sample", can_view=owns)
    )
    api.register_blueprint(
        jobs_admin_blueprint(QUEUE, url_prefix="/api/v1/sample/jobs")
    )
    register_error_handlers(app)
    register_cli(app, registry)
    return app


def create_app() -> Flask:
    """App factory for the worker subprocess, configured from the environment."""
    configure_logging("sample", os.environ.get("LOG_LEVEL", "INFO"))
    return build_app(
        os.environ["SAMPLE_DATABASE_URL"],
        name=os.environ.get("SAMPLE_APP_NAME", "sample"),
    )


def count_effects(session: Session, key: str) -> int:
    statement = sa.select(sa.func.count()).where(effects.c.key == key)
    return session.execute(statement).scalar_one()
