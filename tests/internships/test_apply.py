"""Applying: the snapshot from the students service, the rules, idempotency keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from edulink.auth import Role
from internships.db import db
from internships.views import DIRECTORY_EXTENSION
from tests.internships.helpers import (
    apply,
    create_opportunity,
    create_student_profile,
    insert_applications,
    job_names,
    move,
    open_opportunity,
    patch_opportunity,
    set_deadline,
)


def count_applications(client, world) -> int:
    response = client.get(
        f"/api/v1/employers/{world.employer_id}/applications?limit=100",
        headers=world.system_admin.headers,
    )
    return len(response.get_json()["items"])


def test_apply_snapshots_student_profile(client, world):
    response = apply(client, world.student, world.opportunity["id"])

    assert response.status_code == 201, response.get_json()
    student = response.get_json()["student"]
    assert student["full_name"] == "Amina Njoroge"
    assert student["email"] == "amina@kilima.example"
    assert student["course"] == "BSc Computer Science"
    assert student["year_of_study"] == 3
    assert student["skills"] == ["Python"]
    assert student["institution"] == {"id": world.institution_id, "name": "Kilima"}


def test_apply_returns_location_and_etag(client, world):
    response = apply(client, world.student, world.opportunity["id"])

    body = response.get_json()
    assert response.headers["Location"].endswith(f"/api/v1/applications/{body['id']}")
    assert response.headers["ETag"]
    assert body["status"] == "APPLIED"


def test_apply_twice_conflicts(client, world):
    apply(client, world.student, world.opportunity["id"])

    response = apply(client, world.student, world.opportunity["id"])

    assert response.status_code == 409
    assert "already applied" in response.get_json()["detail"]


def test_apply_again_after_withdrawing(client, world):
    first = apply(client, world.student, world.opportunity["id"]).get_json()
    move(client, world.student, first["id"], "WITHDRAWN", reason="Changed my mind")

    response = apply(client, world.student, world.opportunity["id"])

    assert response.status_code == 201, response.get_json()


def test_apply_after_deadline_conflicts(client, world):
    set_deadline(world.opportunity["id"], datetime.now(UTC) - timedelta(minutes=1))

    response = apply(client, world.student, world.opportunity["id"])

    assert response.status_code == 409
    assert "deadline" in response.get_json()


def test_apply_to_closed_conflicts(client, world):
    patch_opportunity(
        client, world.employer_admin, world.opportunity["id"], {"status": "CLOSED"}
    )

    response = apply(client, world.student, world.opportunity["id"])

    assert response.status_code == 409
    assert response.get_json()["opportunity_status"] == "CLOSED"


def test_apply_to_draft_is_404(client, world):
    draft = create_opportunity(client, world.employer_admin, world.employer_id)

    response = apply(client, world.student, draft["id"])

    assert response.status_code == 404


def test_apply_to_unknown_opportunity_404(client, world):
    response = apply(client, world.student, "00000000-0000-4000-8000-000000000000")

    assert response.status_code == 404


def test_apply_over_capacity_conflicts(client, world):
    insert_applications(world.opportunity, 2, status="ACCEPTED")

    response = apply(client, world.student, world.opportunity["id"])

    assert response.status_code == 409
    assert response.get_json()["capacity"] == 2


def test_apply_with_placement_elsewhere_conflicts(client, world):
    insert_applications(
        world.opportunity, status="ACTIVE", student_user_id=world.student.user_id
    )
    other = open_opportunity(client, world.employer_admin, world.employer_id)

    response = apply(client, world.student, other["id"])

    assert response.status_code == 409
    assert "placement" in response.get_json()["detail"]


def test_apply_outside_restricted_institution_403(client, world):
    restricted = open_opportunity(
        client,
        world.employer_admin,
        world.employer_id,
        institution_id="00000000-0000-4000-8000-000000000001",
    )

    response = apply(client, world.student, restricted["id"])

    assert response.status_code == 403


def test_apply_inside_restricted_institution(client, world):
    restricted = open_opportunity(
        client,
        world.employer_admin,
        world.employer_id,
        institution_id=world.institution_id,
    )

    response = apply(client, world.student, restricted["id"])

    assert response.status_code == 201, response.get_json()


def test_apply_without_profile_is_422(client, world, person):
    newcomer = person(Role.student, email="new@example.com")

    response = apply(client, newcomer, world.opportunity["id"])

    assert response.status_code == 422
    assert "profile" in response.get_json()["detail"]


def test_apply_unaffiliated_student_snapshot(client, world, person, students_client):
    loner = person(Role.student, email="loner@example.com")
    create_student_profile(students_client, loner, full_name="Baraka Otieno")

    response = apply(client, loner, world.opportunity["id"])

    assert response.get_json()["student"]["institution"] is None
    assert response.get_json()["institution_id"] is None


def test_apply_as_employer_is_403(client, world):
    response = apply(client, world.employer_admin, world.opportunity["id"])

    assert response.status_code == 403


def test_apply_anonymously_is_401(client, world):
    response = client.post(
        f"/api/v1/opportunities/{world.opportunity['id']}/applications", json={}
    )

    assert response.status_code == 401


# Idempotency keys


def test_retry_with_key_returns_first_result(client, world):
    first = apply(client, world.student, world.opportunity["id"], idempotency_key="k1")

    retry = apply(client, world.student, world.opportunity["id"], idempotency_key="k1")

    assert retry.status_code == first.status_code == 201
    assert retry.get_json() == first.get_json()
    assert retry.headers["Location"] == first.headers["Location"]
    assert count_applications(client, world) == 1


def test_retry_with_key_creates_no_jobs(client, world):
    apply(client, world.student, world.opportunity["id"], idempotency_key="k1")
    before = _job_count()

    apply(client, world.student, world.opportunity["id"], idempotency_key="k1")

    assert _job_count() == before


def test_key_with_other_body_is_422(client, world):
    apply(client, world.student, world.opportunity["id"], idempotency_key="k1")

    response = client.post(
        f"/api/v1/opportunities/{world.opportunity['id']}/applications",
        json={"cover_letter": "A different letter."},
        headers={**world.student.headers, "Idempotency-Key": "k1"},
    )

    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "Idempotency-Key"


def test_key_on_other_opportunity_is_422(client, world):
    other = open_opportunity(client, world.employer_admin, world.employer_id)
    apply(client, world.student, world.opportunity["id"], idempotency_key="k1")

    response = apply(client, world.student, other["id"], idempotency_key="k1")

    assert response.status_code == 422


def test_same_key_other_students_independent(client, world, person, students_client):
    other = person(Role.student, email="zawadi@kilima.example")
    create_student_profile(students_client, other, full_name="Zawadi Mwangi")
    apply(client, world.student, world.opportunity["id"], idempotency_key="k1")

    response = apply(client, other, world.opportunity["id"], idempotency_key="k1")

    assert response.status_code == 201
    assert response.get_json()["student"]["full_name"] == "Zawadi Mwangi"


def test_overlong_key_is_422(client, world):
    response = apply(
        client, world.student, world.opportunity["id"], idempotency_key="k" * 201
    )

    assert response.status_code == 422


def _job_count() -> int:
    return len(job_names())


def test_closed_during_snapshot_conflicts(internships_app, client, world, monkeypatch):
    real = internships_app.extensions[DIRECTORY_EXTENSION]

    class ClosingDirectory:
        """Reads the real snapshot, then closes the opportunity meanwhile."""

        def snapshot(self, *, student_token: str) -> dict:
            snapshot = real.snapshot(student_token=student_token)
            close_directly(world.opportunity["id"])
            return snapshot

    monkeypatch.setitem(
        internships_app.extensions, DIRECTORY_EXTENSION, ClosingDirectory()
    )

    response = apply(client, world.student, world.opportunity["id"])

    assert response.status_code == 409
    assert response.get_json()["opportunity_status"] == "CLOSED"


def close_directly(opportunity_id: str) -> None:
    assert db.engine is not None
    with db.engine.begin() as connection:
        connection.execute(
            sa.text(
                "UPDATE internships.opportunities SET status = 'CLOSED' WHERE id = :id"
            ),
            {"id": uuid.UUID(opportunity_id)},
        )
