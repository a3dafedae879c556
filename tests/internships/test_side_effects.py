"""Jobs enqueued by each status change, in the same transaction as the change."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from edulink.auth import Principal, Role
from edulink.jobs import Worker
from internships import applications, jobs
from internships.db import db
from tests.internships.helpers import (
    apply,
    insert_applications,
    job_names,
    jobs_of,
    move,
)

LEDGER = "ledger.append"
NOTIFY = "notifications.notify"
TRUST = "students.record_trust_event"
CERTIFICATE = "documents.request_certificate"

# Jobs each move enqueues, in order.
EFFECTS = {
    ("APPLIED", "SHORTLISTED"): [LEDGER, NOTIFY],
    ("APPLIED", "REJECTED"): [LEDGER, NOTIFY],
    ("APPLIED", "WITHDRAWN"): [LEDGER, NOTIFY, NOTIFY],
    ("SHORTLISTED", "ACCEPTED"): [LEDGER, NOTIFY],
    ("ACCEPTED", "ACTIVE"): [LEDGER, NOTIFY],
    ("ACCEPTED", "WITHDRAWN"): [LEDGER, NOTIFY, NOTIFY],
    ("ACTIVE", "COMPLETED"): [LEDGER, NOTIFY, TRUST],
    ("ACTIVE", "TERMINATED"): [LEDGER, NOTIFY],
    ("COMPLETED", "CERTIFIED"): [LEDGER, NOTIFY, TRUST, CERTIFICATE],
}


def test_apply_enqueues_ledger_and_notification(client, world):
    body = apply(client, world.student, world.opportunity["id"]).get_json()

    assert job_names(body["id"]) == [LEDGER, NOTIFY]


def test_apply_ledger_event_has_states(client, world):
    body = apply(client, world.student, world.opportunity["id"]).get_json()

    [event] = jobs_of(LEDGER)
    assert event["entity_id"] == body["id"]
    assert event["old"] is None
    assert event["new"]["status"] == "APPLIED"
    assert event["actor"] == str(world.student.user_id)


@pytest.mark.parametrize(("source", "target"), list(EFFECTS), ids=str)
def test_move_enqueues_its_jobs(client, world, source, target):
    [application_id] = insert_applications(
        world.opportunity, status=source, institution_id=world.institution_id
    )

    response = move(client, world.system_admin, application_id, target, reason="Agreed")

    assert response.status_code == 200, response.get_json()
    assert job_names(application_id) == EFFECTS[(source, target)]


def test_withdrawal_notifies_employer(client, world):
    body = apply(client, world.student, world.opportunity["id"]).get_json()

    move(client, world.student, body["id"], "WITHDRAWN", reason="Took another offer")

    recipients = [job.get("recipient_org_id") for job in jobs_of(NOTIFY)]
    assert world.employer_id in recipients


def test_every_change_notifies_student(client, world):
    body = apply(client, world.student, world.opportunity["id"]).get_json()

    move(client, world.employer_admin, body["id"], "SHORTLISTED")

    recipients = [job.get("recipient_user_id") for job in jobs_of(NOTIFY)]
    assert recipients == [str(world.student.user_id)] * 2


def test_certificate_request_carries_placement(client, world):
    [application_id] = insert_applications(
        world.opportunity, status="COMPLETED", institution_id=world.institution_id
    )

    move(client, world.institution_admin, application_id, "CERTIFIED")

    [request] = jobs_of(CERTIFICATE)
    assert request["application_id"] == application_id
    assert request["employer_name"] == "Savanna Labs"
    assert request["opportunity_title"] == world.opportunity["title"]


def test_failed_move_enqueues_nothing(client, world):
    [application_id] = insert_applications(world.opportunity)

    move(client, world.employer_admin, application_id, "ACTIVE")

    assert job_names() == []


def test_rolled_back_move_leaves_no_jobs(internships_app, world):
    [application_id] = insert_applications(world.opportunity)
    actor = Principal(
        subject=str(world.employer_admin.user_id),
        role=Role.employer_admin,
        org_ids=frozenset({uuid.UUID(world.employer_id)}),
    )

    with internships_app.app_context():
        session = db.session
        application = applications.get_application(
            session, actor=actor, application_id=uuid.UUID(application_id)
        )
        applications.transition(
            session, actor=actor, application=application, data={"to": "SHORTLISTED"}
        )
        enqueued = session.execute(sa.text("SELECT count(*) FROM jobs.job")).scalar()
        session.rollback()

    assert enqueued == 2

    assert job_names() == []


def test_worker_appends_ledger_chain(internships_app, client, world):
    body = apply(client, world.student, world.opportunity["id"]).get_json()
    move(client, world.employer_admin, body["id"], "SHORTLISTED")

    Worker.for_app(internships_app, jobs.registry).run(burst=True)

    query = f"entity_type=application&entity_id={body['id']}"
    entries = client.get(
        f"/api/v1/internships/ledger?{query}", headers=world.student.headers
    ).get_json()["items"]
    verified = client.get(
        f"/api/v1/internships/ledger/verify?{query}", headers=world.student.headers
    ).get_json()
    # NOTE: the worker runs appends in parallel, so the chain's order need not
    # be the order the events occurred in; occurred_at keeps that order.
    by_time = sorted(entries, key=lambda entry: entry["occurred_at"])
    assert [entry["new"]["status"] for entry in by_time] == ["APPLIED", "SHORTLISTED"]
    assert verified["valid"] is True


def test_outsider_cannot_read_ledger(client, world, person):
    body = apply(client, world.student, world.opportunity["id"]).get_json()
    outsider = person(Role.student)

    response = client.get(
        f"/api/v1/internships/ledger?entity_type=application&entity_id={body['id']}",
        headers=outsider.headers,
    )

    assert response.status_code == 404


def test_student_notification_carries_email_and_socket(client, world):
    body = apply(client, world.student, world.opportunity["id"], X_Socket_ID="123.456")

    [notification] = jobs_of(NOTIFY)
    assert notification["recipient_email"] == "amina@kilima.example"
    assert notification["socket_id"] == "123.456"
    assert ["applications", body.get_json()["id"]] in notification["refresh"]
