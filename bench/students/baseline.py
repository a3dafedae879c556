"""Bare Flask app that runs the students service's SQL for two endpoints.

It is the benchmark's reference point: one engine with the service's pool
settings, the statements the service sends for a system admin or a service
caller, and the same JSON body. It has no authentication, no marshmallow,
no ORM and no ETags. Run it with ``gunicorn "bench.students.baseline:create_app()"``
and ``DATABASE_URL`` (``DB_POOL_SIZE`` optional, default 10) in the environment.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import sqlalchemy as sa
from flask import Flask, request
from sqlalchemy.engine import Engine, Row

from edulink.db import create_engine

# Column order and bind parameter names as SQLAlchemy compiles the queries of
# students.services.get_student and batch_students.
COLUMNS = (
    "user_id",
    "full_name",
    "email",
    "institution_id",
    "registration_number",
    "course",
    "year_of_study",
    "skills",
    "verified",
    "trust_level",
    "id",
    "created_at",
    "updated_at",
    "version",
)
SELECT_STUDENTS = (
    "SELECT "
    + ", ".join(f"students.students.{column}" for column in COLUMNS)
    + " \nFROM students.students \n"
)
BY_ID = sa.text(SELECT_STUDENTS + "WHERE students.students.id = :id_1").bindparams(
    sa.bindparam("id_1", type_=sa.Uuid)
)
BY_IDS = sa.text(SELECT_STUDENTS + "WHERE students.students.id IN :id_1").bindparams(
    sa.bindparam("id_1", type_=sa.Uuid, expanding=True)
)
ENGINE_EXTENSION = "bench.engine"


def student_json(row: Row[Any]) -> dict[str, Any]:
    """Return the fields of the service's StudentSchema, in JSON types."""
    return {
        "id": str(row.id),
        "user_id": str(row.user_id),
        "full_name": row.full_name,
        "email": row.email,
        "institution_id": str(row.institution_id) if row.institution_id else None,
        "registration_number": row.registration_number,
        "course": row.course,
        "year_of_study": row.year_of_study,
        "skills": row.skills,
        "verified": row.verified,
        "trust_level": row.trust_level,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def _parse_ids(raw: str) -> list[uuid.UUID]:
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    return list(dict.fromkeys(uuid.UUID(part) for part in parts))


def create_app(database_url: str | None = None) -> Flask:
    """Build the app; ``database_url`` defaults to the DATABASE_URL variable."""
    url = database_url or os.environ["DATABASE_URL"]
    pool_size = int(os.environ.get("DB_POOL_SIZE", "10"))
    engine: Engine = create_engine(url, pool_size=pool_size, application_name="bare")
    app = Flask("bare")
    app.extensions[ENGINE_EXTENSION] = engine

    @app.get("/api/v1/students/<uuid:student_id>")
    def get_student(student_id: uuid.UUID) -> Any:
        with engine.connect() as connection:
            row = connection.execute(BY_ID, {"id_1": student_id}).first()
        if row is None:
            return {"detail": f"Student {student_id} does not exist."}, 404
        return student_json(row)

    @app.get("/api/v1/students")
    def batch_students() -> Any:
        try:
            ids = _parse_ids(request.args.get("ids", ""))
        except ValueError:
            return {"detail": "Every id must be a UUID."}, 400
        if not ids:
            return {"detail": "Give at least one id."}, 400

        with engine.connect() as connection:
            rows = connection.execute(BY_IDS, {"id_1": ids}).all()
        by_id = {row.id: row for row in rows}
        items = [student_json(by_id[i]) for i in ids if i in by_id]
        return {"items": items, "next": None}

    return app
