"""The notify job: one stored notification per idempotency key, then deliveries."""

from __future__ import annotations

import uuid

from edulink.auth import Role
from edulink.jobs.queue import JobSpec, insert_jobs
from notifications import services
from notifications.contracts import NOTIFY, Notify, SendEmail
from notifications.db import db
from notifications.realtime import user_channel
from tests.notifications.helpers import (
    enqueue,
    enqueue_notify,
    job_statuses,
    scalar,
    status_change,
)


def notification_count() -> int:
    return scalar("SELECT count(*) FROM notifications.notifications")


def test_notify_stores_and_delivers(jobs, publisher, sender) -> None:
    user_id = uuid.uuid4()
    enqueue_notify(user_id, recipient_email="amina@kilima.example")
    jobs()

    assert notification_count() == 1
    events = publisher.on_channel(user_channel(user_id))
    assert [event.event for event in events] == ["notification.created"]
    assert len(sender.sent_to("amina@kilima.example")) == 1


def test_event_carries_ids_and_refresh_keys(jobs, publisher) -> None:
    user_id = uuid.uuid4()
    application_id = uuid.uuid4()
    enqueue_notify(user_id, entity_id=application_id)
    jobs()

    data = publisher.on_channel(user_channel(user_id))[0].data
    assert data["notification"]["entity_id"] == str(application_id)
    assert data["refresh"] == [
        ["applications", str(application_id)],
        ["applications", "mine"],
        ["notifications"],
    ]
    assert "body" not in data["notification"]


def test_producer_refresh_keys_win(jobs, publisher) -> None:
    user_id = uuid.uuid4()
    enqueue_notify(user_id, refresh=[["documents", "d1"], ["documents"]])
    jobs()

    data = publisher.on_channel(user_channel(user_id))[0].data
    assert data["refresh"] == [["documents", "d1"], ["documents"]]


def test_duplicate_job_makes_one_notification(jobs, publisher, sender) -> None:
    user_id = uuid.uuid4()
    for _ in range(2):
        enqueue_notify(
            user_id, idempotency_key="status:app-1:v3", recipient_email="a@b.example"
        )
    jobs()

    assert job_statuses("notifications.notify") == ["finished", "finished"]
    assert notification_count() == 1
    assert len(publisher.on_channel(user_channel(user_id))) == 1
    assert len(sender.messages) == 1


def test_same_job_id_enqueued_twice_runs_once(jobs) -> None:
    user_id = uuid.uuid4()
    enqueue_notify(user_id, job_id="application:a1:v2:notify-student")
    enqueue_notify(user_id, job_id="application:a1:v2:notify-student")
    jobs()

    assert notification_count() == 1


def test_handler_rerun_stores_nothing_new(notifications_app, jobs) -> None:
    payload = Notify(**status_change(uuid.uuid4()))
    with notifications_app.app_context():
        for _ in range(2):
            with db.transaction() as session:
                services.notify(session, notify=payload, idempotency_key="k-1")
    assert notification_count() == 1
    # The one push job; without an address there is no email job.
    assert scalar("SELECT count(*) FROM jobs.job") == 1


def test_email_off_sends_no_email(client, person, jobs, publisher, sender) -> None:
    student = person(Role.student)
    response = client.put(
        "/api/v1/notifications/preferences/application_status_changed",
        json={"email": False, "realtime": True},
        headers=student.headers,
    )
    assert response.status_code == 200
    enqueue_notify(student.user_id, recipient_email="s@kilima.example")
    jobs()

    assert sender.messages == []
    assert len(publisher.on_channel(user_channel(student.user_id))) == 1


def test_realtime_off_sends_no_event(client, person, jobs, publisher, sender) -> None:
    student = person(Role.student)
    client.put(
        "/api/v1/notifications/preferences/application_status_changed",
        json={"email": True, "realtime": False},
        headers=student.headers,
    )
    enqueue_notify(student.user_id, recipient_email="s@kilima.example")
    jobs()

    assert publisher.events == []
    assert len(sender.messages) == 1
    assert notification_count() == 1


def test_no_address_means_no_email(jobs, sender) -> None:
    enqueue_notify(uuid.uuid4())
    jobs()

    assert sender.messages == []
    assert (
        scalar("SELECT count(*) FROM jobs.job WHERE name = 'notifications.send_email'")
        == 0
    )


def test_org_notification_goes_to_org_channel(jobs, publisher) -> None:
    org_id = uuid.uuid4()

    enqueue(
        NOTIFY,
        recipient_org_id=org_id,
        kind="application_withdrawn",
        title="An application was withdrawn",
        body="Amina withdrew.",
        entity_type="application",
        entity_id=uuid.uuid4(),
    )
    jobs()

    events = publisher.on_channel(f"private-org-{org_id}")
    assert len(events) == 1
    assert events[0].data["refresh"][1] == ["applications"]


def test_socket_id_is_excluded_in_event(jobs, publisher) -> None:
    user_id = uuid.uuid4()
    enqueue_notify(user_id, socket_id="123.456")
    jobs()

    assert publisher.on_channel(user_channel(user_id))[0].socket_id == "123.456"


def test_invalid_payload_fails_permanently(jobs) -> None:

    from notifications.contracts import NOTIFY
    from notifications.db import db

    # A payload of another schema, as an incompatible producer would send.
    with db.transaction() as session:
        insert_jobs(
            session,
            [
                JobSpec(
                    contract=NOTIFY,
                    queue="notifications",
                    payload=SendEmail(to="a@b.example", template="x", context={}),
                    job_id="bad-1",
                )
            ],
        )
    jobs()

    assert job_statuses("notifications.notify") == ["failed"]
    assert notification_count() == 0
