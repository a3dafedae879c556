"""Admin HTTP endpoint of the job queue: ``GET <prefix>/health``, system admins only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow as ma
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy.orm import Session

from edulink.auth import Role, require_principal
from edulink.db import get_database
from edulink.jobs.health import DEFAULT_STALL_SECONDS, queue_health, summarize

SessionProvider = Callable[[], Session]


class JobTypeHealthSchema(ma.Schema):
    queue = ma.fields.String()
    name = ma.fields.String(metadata={"description": "Job type"})
    queued = ma.fields.Integer(metadata={"description": "Jobs that may start now"})
    deferred = ma.fields.Integer(
        metadata={"description": "Jobs waiting for their start time or a retry"}
    )
    started = ma.fields.Integer(metadata={"description": "Jobs running"})
    stalled = ma.fields.Integer(
        metadata={"description": "Running jobs without a recent heartbeat"}
    )
    failed = ma.fields.Integer(metadata={"description": "Jobs held as failed"})
    oldest_queued_seconds = ma.fields.Float(
        allow_none=True,
        metadata={"description": "Seconds the oldest startable job has waited"},
    )


class TotalsSchema(ma.Schema):
    queued = ma.fields.Integer()
    deferred = ma.fields.Integer()
    started = ma.fields.Integer()
    stalled = ma.fields.Integer()
    failed = ma.fields.Integer()
    oldest_queued_seconds = ma.fields.Float(allow_none=True)


class QueueHealthSchema(ma.Schema):
    job_types = ma.fields.List(ma.fields.Nested(JobTypeHealthSchema))
    totals = ma.fields.Nested(TotalsSchema)


class QueueHealthQuerySchema(ma.Schema):
    all_queues = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "Include the queues of every service"},
    )


def _default_session() -> Session:
    return get_database(current_app).session


def jobs_admin_blueprint(
    queue: str,
    *,
    url_prefix: str,
    session: SessionProvider = _default_session,
    name: str = "jobs_admin",
) -> Blueprint:
    """Build the blueprint serving ``GET {url_prefix}/health`` for ``queue``."""
    blueprint = Blueprint(
        name, __name__, url_prefix=url_prefix, description="Background job queue"
    )

    @blueprint.route("/health")
    class QueueHealth(MethodView):
        @blueprint.arguments(QueueHealthQuerySchema, location="query")
        @blueprint.response(200, QueueHealthSchema)
        def get(self, query: dict[str, Any]) -> dict[str, Any]:
            """Show backlog, oldest waiting job and failures per job type."""
            require_principal(Role.system_admin)
            entries = queue_health(
                session(),
                queue=None if query["all_queues"] else queue,
                stall_seconds=DEFAULT_STALL_SECONDS,
            )
            return {
                "job_types": [entry.to_json() for entry in entries],
                "totals": summarize(entries),
            }

    return blueprint
