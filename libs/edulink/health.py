"""Liveness and readiness endpoints every service exposes."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Blueprint, Flask, jsonify
from sqlalchemy.exc import SQLAlchemyError

from edulink.db import get_database
from edulink.errors import problem_response
from edulink.migrations import database_revision, head_revision

log = logging.getLogger(__name__)


def init_health(app: Flask, *, migrations_dir: Path, schema: str) -> None:
    """Add ``/healthz`` (process alive) and ``/readyz`` (database at head)."""
    expected = head_revision(migrations_dir)
    blueprint = Blueprint("health", __name__)

    @blueprint.get("/healthz")
    def healthz():  # type: ignore[no-untyped-def]
        return jsonify(status="ok")

    @blueprint.get("/readyz")
    def readyz():  # type: ignore[no-untyped-def]
        engine = get_database(app).engine
        try:
            current = database_revision(engine, schema)
        except SQLAlchemyError as error:
            log.warning("readiness check failed: database unreachable: %s", error)
            return problem_response(
                503, detail="The database is unreachable.", slug="not-ready"
            )
        if current != expected:
            return problem_response(
                503,
                detail=f"The {schema} schema is at revision {current}, expected "
                f"{expected}. Run the service's `db upgrade` command.",
                slug="not-ready",
            )
        return jsonify(status="ready", revision=current)

    app.register_blueprint(blueprint)
