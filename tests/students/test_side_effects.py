"""Ledger events, notifications and trust events of the students service."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from edulink.auth import Role
from edulink.jobs import Queue, Worker
from edulink.jobs.schema import job_table
from students import jobs
from students.db import db
from students.models import LEDGER

PROFILE = {"full_name": "Wanjiru Kamau", "course": "BSc Nursing", "year_of_study": 2}


def job_payloads(name: str) -> list[dict[str, Any]]:
    assert db.engine is not None
    with db.engine.connect() as connection:
        return list(
            connection.scalars(
                sa.select(job_table.c.payload)
                .where(job_table.c.name == name)
                .order_by(job_table.c.queue_job_id)
            )
        )


def ledger_rows(entity_id: str) -> list[Any]:
    assert db.engine is not None
    with db.engine.connect() as connection:
        return list(
            connection.execute(
                sa.select(LEDGER.table)
                .where(LEDGER.table.c.entity_id == entity_id)
                .order_by(LEDGER.table.c.seq)
            )
        )


def run_jobs(app) -> None:
    Worker.for_app(app, jobs.registry).run(burst=True)


def make_institution(client, admin, **fields) -> dict[str, Any]:
    body = {"name": f"Institute {uuid.uuid4().hex[:6]}", **fields}
    response = client.post("/api/v1/institutions", json=body, headers=admin.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def make_student(client, student) -> dict[str, Any]:
    response = client.post("/api/v1/students/me", json=PROFILE, headers=student.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_institution_creation_enqueues_ledger_event(client, person):
    admin = person(Role.system_admin)

    institution = make_institution(client, admin)

    events = [
        payload
        for payload in job_payloads("ledger.append")
        if payload["entity_id"] == institution["id"]
    ]
    assert [event["event_type"] for event in events] == ["institution.created"]
    assert events[0]["actor"] == str(admin.user_id)


def test_ledger_chain_after_worker_runs(students_app, client, person):
    admin = person(Role.system_admin)
    student = person(Role.student, email="w@uni.example.ac.ke")
    institution = make_institution(client, admin)
    profile = make_student(client, student)
    etag = client.get("/api/v1/students/me", headers=student.headers).headers["ETag"]
    client.patch(
        "/api/v1/students/me",
        json={"course": "BSc Midwifery"},
        headers={**student.headers, "If-Match": etag},
    )

    run_jobs(students_app)

    rows = ledger_rows(profile["id"])
    assert [row.event_type for row in rows] == ["student.created", "student.updated"]
    assert rows[1].prev_hash == rows[0].hash
    assert rows[1].old["course"] == "BSc Nursing"
    assert rows[1].new["course"] == "BSc Midwifery"
    assert len(ledger_rows(institution["id"])) == 1


def test_unchanged_patch_records_nothing(client, person):
    student = person(Role.student, email="w@example.com")
    profile = make_student(client, student)
    etag = client.get("/api/v1/students/me", headers=student.headers).headers["ETag"]

    client.patch(
        "/api/v1/students/me",
        json={"course": PROFILE["course"]},
        headers={**student.headers, "If-Match": etag},
    )

    events = [
        payload["event_type"]
        for payload in job_payloads("ledger.append")
        if payload["entity_id"] == profile["id"]
    ]
    assert events == ["student.created"]


def test_decision_notifies_student(client, person):
    admin = person(Role.system_admin)
    institution = make_institution(client, admin, email_domains=["uni.example.ac.ke"])
    inst_admin = person(Role.institution_admin, org_ids=[institution["id"]])
    student = person(Role.student, email="w@gmail.example.com")
    profile = make_student(client, student)
    claim = client.post(
        "/api/v1/students/me/claims",
        json={"institution_id": institution["id"]},
        headers=student.headers,
    ).get_json()
    assert claim["status"] == "pending"
    assert job_payloads("notifications.notify") == []

    response = client.post(
        f"/api/v1/institutions/{institution['id']}/claims/{claim['id']}/decision",
        json={"decision": "reject", "reason": "Not on our register"},
        headers=inst_admin.headers,
    )

    assert response.status_code == 200
    [notification] = job_payloads("notifications.notify")
    assert notification["recipient_user_id"] == str(student.user_id)
    assert notification["kind"] == "affiliation_decided"
    assert notification["entity_id"] == claim["id"]
    assert "Not on our register" in notification["body"]
    assert profile["id"] != notification["entity_id"]


def test_auto_approval_notifies_student(client, person):
    admin = person(Role.system_admin)
    institution = make_institution(client, admin, email_domains=["uni.example.ac.ke"])
    student = person(Role.student, email="w@uni.example.ac.ke")
    make_student(client, student)

    claim = client.post(
        "/api/v1/students/me/claims",
        json={"institution_id": institution["id"]},
        headers=student.headers,
    ).get_json()

    assert claim["status"] == "approved"
    [notification] = job_payloads("notifications.notify")
    assert notification["title"] == "Your institution confirmed your affiliation"


def test_failed_request_enqueues_nothing(client, person):
    admin = person(Role.system_admin)
    make_institution(client, admin, name="Kenyatta Institute")

    response = client.post(
        "/api/v1/institutions",
        json={"name": "kenyatta institute"},
        headers=admin.headers,
    )

    assert response.status_code == 409
    assert len(job_payloads("ledger.append")) == 1


def enqueue_trust_event(student_id: str, event: str, application_id: uuid.UUID):
    with db.transaction() as session:
        Queue(jobs.QUEUE, session=session).enqueue_call(
            jobs.TRUST_EVENT,
            kwargs={
                "student_id": student_id,
                "event": event,
                "application_id": application_id,
            },
            job_id=f"trust:{application_id}:{event}",
        )


def test_trust_event_raises_level_once(students_app, client, person):
    student = person(Role.student, email="w@example.com")
    profile = make_student(client, student)
    application_id = uuid.uuid4()
    with students_app.app_context():
        enqueue_trust_event(profile["id"], "internship_completed", application_id)
        enqueue_trust_event(profile["id"], "internship_completed", application_id)
        run_jobs(students_app)

    body = client.get("/api/v1/students/me", headers=student.headers).get_json()
    assert body["trust_level"] == 3
    raised = [
        row
        for row in ledger_rows(profile["id"])
        if row.event_type == "student.trust_raised"
    ]
    assert len(raised) == 1


def test_trust_level_never_falls(students_app, client, person):
    student = person(Role.student, email="w@example.com")
    profile = make_student(client, student)
    with students_app.app_context():
        enqueue_trust_event(profile["id"], "internship_certified", uuid.uuid4())
        enqueue_trust_event(profile["id"], "internship_completed", uuid.uuid4())
        run_jobs(students_app)

    body = client.get("/api/v1/students/me", headers=student.headers).get_json()
    assert body["trust_level"] == 4


def test_ledger_endpoint_visibility(students_app, client, person):
    admin = person(Role.system_admin)
    student = person(Role.student, email="w@example.com")
    stranger = person(Role.student, email="x@example.com")
    profile = make_student(client, student)
    run_jobs(students_app)
    query = f"?entity_type=student&entity_id={profile['id']}"

    own = client.get(f"/api/v1/students/ledger{query}", headers=student.headers)
    other = client.get(f"/api/v1/students/ledger{query}", headers=stranger.headers)
    everything = client.get("/api/v1/students/ledger", headers=admin.headers)

    assert own.status_code == 200
    assert [item["event_type"] for item in own.get_json()["items"]] == [
        "student.created"
    ]
    assert other.status_code == 404
    assert everything.status_code == 200


def test_queue_health_for_system_admin(client, person):
    admin = person(Role.system_admin)
    make_institution(client, admin)

    response = client.get("/api/v1/students/jobs/health", headers=admin.headers)

    assert response.status_code == 200
    body = response.get_json()
    assert body, body


def test_queue_health_hidden_from_students(client, person):
    student = person(Role.student, email="w@example.com")

    response = client.get("/api/v1/students/jobs/health", headers=student.headers)

    assert response.status_code == 403
