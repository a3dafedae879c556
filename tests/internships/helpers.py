"""Builders for internships tests: employers, opportunities, students, applications."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from edulink.jobs.schema import job_table
from internships.db import db

PROBLEM_JSON = "application/problem+json"


def opportunity_body(employer_id: str, **overrides: Any) -> dict[str, Any]:
    """Return a valid opportunity request body, deadline a week from now."""
    deadline = datetime.now(UTC) + timedelta(days=7)
    start = (deadline + timedelta(days=14)).date()
    body: dict[str, Any] = {
        "employer_id": employer_id,
        "title": "Backend engineering intern",
        "description": "Build Flask services on PostgreSQL with the platform team.",
        "skills": ["Python", "SQL"],
        "location": "Nairobi",
        "location_type": "hybrid",
        "capacity": 2,
        "stipend": {"amount": "25000.00", "currency": "KES"},
        "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=90)).isoformat(),
        "deadline": deadline.isoformat(),
    }
    body.update(overrides)
    return body


def create_employer(
    client: FlaskClient, admin: Any, name: str = "Savanna Labs", status: str = "active"
) -> dict[str, Any]:
    response = client.post(
        "/api/v1/employers",
        json={"name": name, "contact_email": "jobs@savanna.example", "status": status},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def create_opportunity(
    client: FlaskClient, employer_admin: Any, employer_id: str, **overrides: Any
) -> dict[str, Any]:
    response = client.post(
        "/api/v1/opportunities",
        json=opportunity_body(employer_id, **overrides),
        headers=employer_admin.headers,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def patch_opportunity(
    client: FlaskClient, actor: Any, opportunity_id: str, changes: dict[str, Any]
) -> TestResponse:
    current = client.get(
        f"/api/v1/opportunities/{opportunity_id}", headers=actor.headers
    )
    return client.patch(
        f"/api/v1/opportunities/{opportunity_id}",
        json=changes,
        headers={**actor.headers, "If-Match": current.headers["ETag"]},
    )


def open_opportunity(
    client: FlaskClient, employer_admin: Any, employer_id: str, **overrides: Any
) -> dict[str, Any]:
    """Create an opportunity and open it; return its body."""
    created = create_opportunity(client, employer_admin, employer_id, **overrides)
    response = patch_opportunity(
        client, employer_admin, created["id"], {"status": "OPEN"}
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def create_institution(students_client: FlaskClient, admin: Any, name: str) -> str:
    response = students_client.post(
        "/api/v1/institutions",
        json={"name": name, "email_domains": [f"{name.lower()}.example"]},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def create_student_profile(
    students_client: FlaskClient,
    student: Any,
    *,
    institution_id: str | None = None,
    full_name: str = "Amina Njoroge",
) -> dict[str, Any]:
    """Create the student's profile, affiliated at once when an institution is given."""
    response = students_client.post(
        "/api/v1/students/me",
        json={
            "full_name": full_name,
            "course": "BSc Computer Science",
            "year_of_study": 3,
            "skills": ["Python"],
        },
        headers=student.headers,
    )
    assert response.status_code == 201, response.get_json()
    if institution_id:
        claim = students_client.post(
            "/api/v1/students/me/claims",
            json={"institution_id": institution_id},
            headers=student.headers,
        )
        assert claim.get_json()["status"] == "approved", claim.get_json()
    return response.get_json()


def apply(
    client: FlaskClient, student: Any, opportunity_id: str, **headers: str
) -> TestResponse:
    extra = {name.replace("_", "-"): value for name, value in headers.items()}
    return client.post(
        f"/api/v1/opportunities/{opportunity_id}/applications",
        json={"cover_letter": "I would like to join."},
        headers={**student.headers, **extra},
    )


def move(
    client: FlaskClient,
    actor: Any,
    application_id: str,
    to: str,
    *,
    etag: str | None = None,
    **fields: Any,
) -> TestResponse:
    """Send a transition with the current ETag, unless ``etag`` is given."""
    if etag is None:
        current = client.get(
            f"/api/v1/applications/{application_id}", headers=actor.headers
        )
        etag = current.headers.get("ETag", '"unseen"')
    return client.post(
        f"/api/v1/applications/{application_id}/transitions",
        json={"to": to, **fields},
        headers={**actor.headers, "If-Match": etag},
    )


@dataclass
class World:
    """One employer with an OPEN opportunity, its staff, and an affiliated student."""

    system_admin: Any
    employer_admin: Any
    supervisor: Any
    institution_admin: Any
    student: Any
    employer_id: str
    institution_id: str
    opportunity: dict[str, Any]


def job_names(entity_id: str | None = None) -> list[str]:
    """Return the names of enqueued jobs, oldest first, optionally for one entity."""
    assert db.engine is not None
    statement = sa.select(job_table.c.name).order_by(
        job_table.c.enqueued_at, job_table.c.queue_job_id
    )
    if entity_id is not None:
        statement = statement.where(
            sa.or_(
                job_table.c.payload["entity_id"].astext == entity_id,
                job_table.c.payload["application_id"].astext == entity_id,
            )
        )
    with db.engine.connect() as connection:
        return list(connection.scalars(statement))


def jobs_of(name: str) -> list[dict[str, Any]]:
    """Return the payloads of the enqueued jobs named ``name``."""
    assert db.engine is not None
    with db.engine.connect() as connection:
        return list(
            connection.scalars(
                sa.select(job_table.c.payload)
                .where(job_table.c.name == name)
                .order_by(job_table.c.queue_job_id)
            )
        )


def set_deadline(opportunity_id: str, deadline: datetime) -> None:
    """Move a deadline directly in the table, e.g. into the past."""
    assert db.engine is not None
    with db.engine.begin() as connection:
        connection.execute(
            sa.text(
                "UPDATE internships.opportunities SET deadline = :deadline "
                "WHERE id = :id"
            ),
            {"deadline": deadline, "id": uuid.UUID(opportunity_id)},
        )


def today() -> date:
    return datetime.now(UTC).date()


def insert_applications(
    opportunity: dict[str, Any],
    count: int = 1,
    *,
    status: str = "APPLIED",
    institution_id: str | None = None,
    student_user_id: uuid.UUID | None = None,
) -> list[str]:
    """Insert applications directly, each by a new student, and return their ids.

    Skips the API and the students service, for tests about the lifecycle
    and lists rather than applying. ``student_user_id`` fits ``count=1``.
    """
    assert db.engine is not None
    rows = []
    for number in range(count):
        student_id = uuid.uuid4()
        if student_user_id is not None:
            # One student id per user, as in the students service.
            student_id = uuid.uuid5(uuid.NAMESPACE_URL, str(student_user_id))
        snapshot = {
            "student_id": str(student_id),
            "full_name": f"Student {number}",
            "email": f"student{number}@example.com",
            "course": "BSc Statistics",
            "year_of_study": 2,
            "skills": ["R"],
            "institution": (
                {"id": institution_id, "name": "Kilima"} if institution_id else None
            ),
        }
        rows.append(
            {
                "id": uuid.uuid4(),
                "opportunity_id": uuid.UUID(opportunity["id"]),
                "employer_id": uuid.UUID(opportunity["employer_id"]),
                "student_id": student_id,
                "student_user_id": student_user_id or uuid.uuid4(),
                "institution_id": uuid.UUID(institution_id) if institution_id else None,
                "student_snapshot": json.dumps(snapshot),
                "status": status,
            }
        )
    statement = sa.text(
        "INSERT INTO internships.applications (id, opportunity_id, employer_id, "
        "student_id, student_user_id, institution_id, student_snapshot, status, "
        "created_at, updated_at, status_changed_at, version) VALUES (:id, "
        ":opportunity_id, :employer_id, :student_id, :student_user_id, "
        ":institution_id, CAST(:student_snapshot AS jsonb), :status, "
        "clock_timestamp(), now(), now(), 1)"
    )
    with db.engine.begin() as connection:
        connection.execute(statement, rows)
    return [str(row["id"]) for row in rows]
