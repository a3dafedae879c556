"""The inbox API: paging, unread filter and count, marking read, preferences."""

from __future__ import annotations

import uuid

from edulink.auth import Role
from notifications.contracts import NOTIFY
from tests.notifications.helpers import PROBLEM_JSON, enqueue, enqueue_notify


def fill_inbox(jobs, user_id: uuid.UUID, count: int) -> None:
    for number in range(count):
        enqueue_notify(user_id, title=f"Update {number}")
    jobs()


def test_inbox_lists_newest_first(client, person, jobs) -> None:
    student = person(Role.student)
    fill_inbox(jobs, student.user_id, 3)
    enqueue_notify(student.user_id, title="Latest")
    jobs()

    response = client.get("/api/v1/notifications", headers=student.headers)
    assert response.status_code == 200
    titles = [item["title"] for item in response.get_json()["items"]]
    assert titles[0] == "Latest"
    assert len(titles) == 4


def test_inbox_pages_with_cursor(client, person, jobs) -> None:
    student = person(Role.student)
    fill_inbox(jobs, student.user_id, 5)

    first = client.get("/api/v1/notifications?limit=2", headers=student.headers)
    body = first.get_json()
    assert len(body["items"]) == 2
    assert 'rel="next"' in first.headers["Link"]
    seen = [item["id"] for item in body["items"]]
    cursor = body["next"]
    while cursor:
        page = client.get(
            f"/api/v1/notifications?limit=2&cursor={cursor}", headers=student.headers
        ).get_json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next"]
    assert len(seen) == 5
    assert len(set(seen)) == 5


def test_inbox_hides_other_users(client, person, jobs) -> None:
    student = person(Role.student)
    other = person(Role.student)
    fill_inbox(jobs, other.user_id, 2)

    response = client.get("/api/v1/notifications", headers=student.headers)
    assert response.get_json()["items"] == []


def test_unread_filter_and_count(client, person, jobs) -> None:
    student = person(Role.student)
    fill_inbox(jobs, student.user_id, 3)
    items = client.get("/api/v1/notifications", headers=student.headers).get_json()[
        "items"
    ]

    read = client.post(
        f"/api/v1/notifications/{items[0]['id']}/read", headers=student.headers
    )
    assert read.status_code == 200
    assert read.get_json()["read"] is True

    count = client.get("/api/v1/notifications/unread-count", headers=student.headers)
    assert count.get_json() == {"unread": 2}
    unread = client.get(
        "/api/v1/notifications?unread=true", headers=student.headers
    ).get_json()["items"]
    assert items[0]["id"] not in {item["id"] for item in unread}
    assert len(unread) == 2


def test_mark_read_twice_keeps_first_time(client, person, jobs) -> None:
    student = person(Role.student)
    fill_inbox(jobs, student.user_id, 1)
    item = client.get("/api/v1/notifications", headers=student.headers).get_json()[
        "items"
    ][0]
    url = f"/api/v1/notifications/{item['id']}/read"

    first = client.post(url, headers=student.headers).get_json()["read_at"]
    second = client.post(url, headers=student.headers).get_json()["read_at"]
    assert first == second


def test_mark_read_of_others_is_404(client, person, jobs) -> None:
    student = person(Role.student)
    other = person(Role.student)
    fill_inbox(jobs, other.user_id, 1)
    item = client.get("/api/v1/notifications", headers=other.headers).get_json()[
        "items"
    ][0]

    response = client.post(
        f"/api/v1/notifications/{item['id']}/read", headers=student.headers
    )
    assert response.status_code == 404
    assert response.mimetype == PROBLEM_JSON


def test_mark_all_read(client, person, jobs) -> None:
    student = person(Role.student)
    fill_inbox(jobs, student.user_id, 3)

    response = client.post(
        "/api/v1/notifications/read-all", json={}, headers=student.headers
    )
    assert response.get_json() == {"updated": 3}
    count = client.get("/api/v1/notifications/unread-count", headers=student.headers)
    assert count.get_json() == {"unread": 0}


def test_org_staff_see_org_notifications(client, person, jobs) -> None:
    org_id = uuid.uuid4()
    employer_admin = person(Role.employer_admin, org_ids=[org_id])
    enqueue(
        NOTIFY,
        recipient_org_id=org_id,
        kind="application_withdrawn",
        title="An application was withdrawn",
        body="Withdrawn.",
    )
    jobs()

    items = client.get(
        "/api/v1/notifications", headers=employer_admin.headers
    ).get_json()["items"]
    assert [item["kind"] for item in items] == ["application_withdrawn"]


def test_inbox_needs_a_token(client) -> None:
    response = client.get("/api/v1/notifications")
    assert response.status_code == 401


def test_service_token_has_no_inbox(client, tokens) -> None:
    token = tokens.service_token("internships")
    response = client.get(
        "/api/v1/notifications", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 403


def test_preferences_default_to_all_on(client, person) -> None:
    student = person(Role.student)
    items = client.get(
        "/api/v1/notifications/preferences", headers=student.headers
    ).get_json()["items"]

    kinds = {item["kind"] for item in items}
    assert "application_status_changed" in kinds
    assert all(item["email"] and item["realtime"] for item in items)
    assert all(item["in_app"] for item in items)


def test_preference_update_is_listed(client, person) -> None:
    student = person(Role.student)
    url = "/api/v1/notifications/preferences/ticket_reply"
    response = client.put(
        url, json={"email": False, "realtime": True}, headers=student.headers
    )
    assert response.get_json()["email"] is False

    items = client.get(
        "/api/v1/notifications/preferences", headers=student.headers
    ).get_json()["items"]
    ticket_reply = next(item for item in items if item["kind"] == "ticket_reply")
    assert ticket_reply["email"] is False


def test_preference_of_unknown_kind_is_404(client, person) -> None:
    student = person(Role.student)
    response = client.put(
        "/api/v1/notifications/preferences/no_such_kind",
        json={"email": False, "realtime": False},
        headers=student.headers,
    )
    assert response.status_code == 404
    assert "kinds" in response.get_json()


def test_preference_needs_both_fields(client, person) -> None:
    student = person(Role.student)
    response = client.put(
        "/api/v1/notifications/preferences/ticket_reply",
        json={"email": False},
        headers=student.headers,
    )
    assert response.status_code == 422


def test_read_tells_other_tabs(client, person, jobs, publisher) -> None:
    student = person(Role.student)
    fill_inbox(jobs, student.user_id, 1)
    publisher.clear()
    item = client.get("/api/v1/notifications", headers=student.headers).get_json()[
        "items"
    ][0]
    client.post(
        f"/api/v1/notifications/{item['id']}/read",
        headers={**student.headers, "X-Socket-ID": "7.8"},
    )
    jobs()

    (event,) = publisher.on_channel(f"private-user-{student.user_id}")
    assert event.event == "notification.read"
    assert event.data["notification_ids"] == [item["id"]]
    assert event.data["refresh"] == [["notifications"]]
    assert event.socket_id == "7.8"


def test_read_all_with_nothing_unread_is_silent(
    client, person, jobs, publisher
) -> None:
    student = person(Role.student)
    response = client.post(
        "/api/v1/notifications/read-all", json={}, headers=student.headers
    )
    jobs()

    assert response.get_json() == {"updated": 0}
    assert publisher.events == []
