"""Builders for students API tests: institutions, profiles and claims over HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from students.db import db
from students.models import SCHEMA

PROBLEM_JSON = "application/problem+json"


class ServiceCaller:
    """Another service calling with its client-credentials token."""

    def __init__(self, tokens, client_id: str = "internships") -> None:
        self._tokens = tokens
        self._client_id = client_id

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._tokens.service_token(self._client_id)}"
        }


def create_institution(
    client: FlaskClient,
    admin: Any,
    name: str,
    *,
    domains: tuple[str, ...] = (),
    status: str = "active",
) -> dict[str, Any]:
    """Create an institution as the system admin ``admin`` and return its body."""
    response = client.post(
        "/api/v1/institutions",
        json={"name": name, "email_domains": list(domains), "status": status},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def create_profile(
    client: FlaskClient, student: Any, full_name: str = "Amina Njoroge"
) -> dict[str, Any]:
    """Create the profile of the student ``student`` and return its body."""
    response = client.post(
        "/api/v1/students/me", json={"full_name": full_name}, headers=student.headers
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def claim(
    client: FlaskClient, student: Any, institution_id: str, **fields: Any
) -> TestResponse:
    """Send the affiliation claim of ``student`` to ``institution_id``."""
    return client.post(
        "/api/v1/students/me/claims",
        json={"institution_id": institution_id, **fields},
        headers=student.headers,
    )


def decide(
    client: FlaskClient,
    admin: Any,
    institution_id: str,
    claim_id: str,
    decision: str,
    reason: str | None = None,
) -> TestResponse:
    """Send an admin's decision on a claim."""
    body = {"decision": decision}
    if reason is not None:
        body["reason"] = reason
    return client.post(
        f"/api/v1/institutions/{institution_id}/claims/{claim_id}/decision",
        json=body,
        headers=admin.headers,
    )


def error_fields(response: TestResponse) -> set[str]:
    """Return the field names listed in a problem body's ``errors``."""
    return {item["field"] for item in response.get_json().get("errors", [])}


def item_ids(response: TestResponse) -> list[str]:
    """Return the ids of a page body's items, in order."""
    return [item["id"] for item in response.get_json()["items"]]


def row_count(table: str) -> int:
    """Count the rows of a table in the students schema, outside any request."""
    assert db.engine is not None
    with db.engine.connect() as connection:
        return connection.scalar(sa.text(f"SELECT count(*) FROM {SCHEMA}.{table}"))


def insert_students(count: int, *, same_created_at: bool = False) -> list[uuid.UUID]:
    """Insert ``count`` bare student rows directly and return their ids.

    With ``same_created_at`` every row gets one timestamp, so only the id
    breaks ties in the list order.
    """
    assert db.engine is not None
    rows = [
        {
            "id": uuid.uuid4(),
            "user_id": uuid.uuid4(),
            "full_name": f"Student {number}",
            "email": f"student{number}@example.com",
        }
        for number in range(count)
    ]
    created_at = "'2024-01-01T00:00:00Z'" if same_created_at else "clock_timestamp()"
    statement = sa.text(
        f"INSERT INTO {SCHEMA}.students (id, user_id, full_name, email, "
        f"created_at, updated_at, version) "
        f"VALUES (:id, :user_id, :full_name, :email, {created_at}, now(), 1)"
    )
    with db.engine.begin() as connection:
        for row in rows:
            connection.execute(statement, row)
    return [row["id"] for row in rows]
