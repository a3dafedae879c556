"""Platform alerts: broadcast, listing until expiry, batched inbox fan-out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from edulink.auth import Role
from notifications import alerts
from notifications.db import db
from notifications.realtime import ALERTS_CHANNEL
from tests.notifications.helpers import job_statuses, scalar


def in_hours(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def post_alert(client, admin, **fields):
    body = {"severity": "warning", "message": "Maintenance at 22:00", **fields}
    body.setdefault("expires_at", in_hours(2))
    return client.post("/api/v1/alerts", json=body, headers=admin.headers)


def test_alert_is_broadcast_and_listed(client, person, jobs, publisher) -> None:
    admin = person(Role.system_admin)
    response = post_alert(client, admin)
    assert response.status_code == 201
    jobs()

    events = publisher.on_channel(ALERTS_CHANNEL)
    assert [event.event for event in events] == ["alert.created"]
    assert events[0].data["alert"]["message"] == "Maintenance at 22:00"
    listed = client.get("/api/v1/alerts").get_json()["items"]
    assert [item["id"] for item in listed] == [response.get_json()["id"]]


def test_ended_alert_is_not_listed(client, person, jobs, publisher) -> None:
    admin = person(Role.system_admin)
    alert_id = post_alert(client, admin).get_json()["id"]
    response = client.delete(f"/api/v1/alerts/{alert_id}", headers=admin.headers)
    assert response.status_code == 204
    jobs()

    assert client.get("/api/v1/alerts").get_json()["items"] == []
    assert "alert.ended" in [e.event for e in publisher.on_channel(ALERTS_CHANNEL)]


def test_past_expiry_is_422(client, person) -> None:
    response = post_alert(client, person(Role.system_admin), expires_at=in_hours(-1))
    assert response.status_code == 422


def test_only_system_admins_post(client, person) -> None:
    response = post_alert(client, person(Role.support_staff))
    assert response.status_code == 403


def test_oversized_alert_is_422(client, person) -> None:
    admin = person(Role.system_admin)
    response = post_alert(client, admin, message="m" * 2001)
    assert response.status_code == 422


def test_alert_too_large_for_event_is_422(client, person) -> None:
    # 2,000 control characters pass the length check but JSON escapes each
    # to six bytes, past Pusher's 10,240-byte limit.
    admin = person(Role.system_admin)
    response = post_alert(client, admin, message="\x01" * 2000)
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "message"


def test_fan_out_fills_every_inbox(client, person, jobs) -> None:
    admin = person(Role.system_admin)
    user_ids = [str(uuid.uuid4()) for _ in range(1200)]
    response = post_alert(client, admin, user_ids=[*user_ids, user_ids[0]])
    assert response.status_code == 201
    jobs()

    assert scalar("SELECT count(*) FROM notifications.notifications") == 1200
    assert job_statuses("notifications.fan_out_alert") == ["finished"]


def test_fan_out_rerun_inserts_nothing(notifications_app, client, person) -> None:
    admin = person(Role.system_admin)
    alert_id = post_alert(client, admin).get_json()["id"]
    user_ids = [uuid.uuid4() for _ in range(10)]
    with notifications_app.app_context():
        with db.transaction() as session:
            first = alerts.fan_out_alert(
                session, alert_id=uuid.UUID(alert_id), user_ids=user_ids
            )
        with db.transaction() as session:
            second = alerts.fan_out_alert(
                session, alert_id=uuid.UUID(alert_id), user_ids=user_ids
            )
    assert first == 10
    assert second == 0


def test_alert_in_user_inbox(client, person, jobs) -> None:
    admin = person(Role.system_admin)
    student = person(Role.student)
    post_alert(client, admin, user_ids=[str(student.user_id)])
    jobs()

    items = client.get("/api/v1/notifications", headers=student.headers).get_json()[
        "items"
    ]
    assert [item["kind"] for item in items] == ["system_alert"]
    assert items[0]["title"].startswith("Warning alert: Maintenance")
