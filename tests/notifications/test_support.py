"""Support tickets: opening, tracking codes, replies, internal notes, status."""

from __future__ import annotations

from typing import Any

import pytest

from edulink.auth import Role
from notifications.realtime import SUPPORT_CHANNEL, ticket_channel, user_channel
from notifications.support import (
    TRACKING_ALPHABET,
    TRACKING_CODE_LENGTH,
    normalize_tracking_code,
)
from tests.notifications.helpers import PROBLEM_JSON, scalar

TICKET = {
    "subject": "Cannot upload my CV",
    "category": "technical",
    "priority": "high",
    "message": "The upload stops at 90%.",
}
NOTE = "Owner is on the legacy plan; check the quota first."


def open_anonymous(client, email: str = "wanjiru@example.org") -> dict[str, Any]:
    response = client.post(
        "/api/v1/support/tickets", json={**TICKET, "name": "Wanjiru", "email": email}
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def open_signed_in(client, owner) -> dict[str, Any]:
    response = client.post(
        "/api/v1/support/tickets", json=TICKET, headers=owner.headers
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def reply(client, who, ticket_id: str, body: str, **fields: Any):
    return client.post(
        f"/api/v1/support/tickets/{ticket_id}/messages",
        json={"body": body, **fields},
        headers=who.headers,
    )


def test_signed_out_ticket_gets_tracking_code(client, jobs, sender) -> None:
    ticket = open_anonymous(client)
    code = ticket["tracking_code"]

    assert len(code) == TRACKING_CODE_LENGTH + 1
    assert all(c in TRACKING_ALPHABET for c in code.replace("-", ""))
    assert ticket["status"] == "OPEN"
    jobs()
    confirmation = sender.sent_to("wanjiru@example.org")
    assert len(confirmation) == 1
    assert code in confirmation[0]["Subject"]


def test_tracking_code_normalizes_typing() -> None:
    assert normalize_tracking_code(" abcde-fgh23 ") == "ABCDEFGH23"
    assert normalize_tracking_code("ABCDE-FGH2O") is None
    assert normalize_tracking_code("short") is None


def test_signed_out_needs_name_and_email(client) -> None:
    response = client.post("/api/v1/support/tickets", json=TICKET)
    assert response.status_code == 422
    fields = {item["field"] for item in response.get_json()["errors"]}
    assert fields == {"name", "email"}


def test_invalid_category_is_422(client) -> None:
    response = client.post(
        "/api/v1/support/tickets",
        json={**TICKET, "category": "billing", "name": "A", "email": "a@b.example"},
    )
    assert response.status_code == 422


def test_oversized_message_is_422(client) -> None:
    response = client.post(
        "/api/v1/support/tickets",
        json={**TICKET, "message": "x" * 5001, "name": "A", "email": "a@b.example"},
    )
    assert response.status_code == 422
    assert response.mimetype == PROBLEM_JSON


def test_access_by_code_and_email(client) -> None:
    ticket = open_anonymous(client)
    response = client.post(
        "/api/v1/support/tickets/access",
        json={
            "tracking_code": ticket["tracking_code"].lower(),
            "email": "WANJIRU@example.org",
        },
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["ticket"]["id"] == ticket["id"]
    assert [m["body"] for m in body["messages"]["items"]] == [TICKET["message"]]


@pytest.mark.parametrize(
    ("code_suffix", "email"),
    [("", "someone@else.example"), ("wrong", "wanjiru@example.org")],
)
def test_access_with_wrong_pair_is_404(client, code_suffix, email) -> None:
    ticket = open_anonymous(client)
    code = "ZZZZZ-ZZZZZ" if code_suffix else ticket["tracking_code"]
    response = client.post(
        "/api/v1/support/tickets/access", json={"tracking_code": code, "email": email}
    )
    assert response.status_code == 404


def test_signed_in_owner_reads_own_ticket(client, person) -> None:
    owner = person(Role.student, email="amina@kilima.example", name="Amina")
    ticket = open_signed_in(client, owner)

    assert ticket["email"] == "amina@kilima.example"
    response = client.get(
        f"/api/v1/support/tickets/{ticket['id']}", headers=owner.headers
    )
    assert response.status_code == 200
    assert response.headers["ETag"]


def test_other_user_gets_404(client, person) -> None:
    owner = person(Role.student, email="amina@kilima.example", name="Amina")
    ticket = open_signed_in(client, owner)
    stranger = person(Role.student)

    response = client.get(
        f"/api/v1/support/tickets/{ticket['id']}", headers=stranger.headers
    )
    assert response.status_code == 404


def test_staff_list_all_owners_list_own(client, person) -> None:
    owner = person(Role.student, email="amina@kilima.example", name="Amina")
    open_signed_in(client, owner)
    open_anonymous(client)
    staff = person(Role.support_staff)

    staff_items = client.get("/api/v1/support/tickets", headers=staff.headers)
    owner_items = client.get("/api/v1/support/tickets", headers=owner.headers)
    assert len(staff_items.get_json()["items"]) == 2
    assert len(owner_items.get_json()["items"]) == 1


def test_first_staff_reply_moves_to_in_progress(client, person) -> None:
    owner = person(Role.student, email="amina@kilima.example", name="Amina")
    ticket = open_signed_in(client, owner)
    staff = person(Role.support_staff, name="Otieno")

    response = reply(client, staff, ticket["id"], "Which browser do you use?")
    assert response.status_code == 201
    status = client.get(
        f"/api/v1/support/tickets/{ticket['id']}", headers=owner.headers
    ).get_json()["status"]
    assert status == "IN_PROGRESS"


def test_staff_reply_notifies_owner(client, person, jobs, publisher, sender) -> None:
    owner = person(Role.student, email="amina@kilima.example", name="Amina")
    ticket = open_signed_in(client, owner)
    staff = person(Role.support_staff, name="Otieno")
    reply(client, staff, ticket["id"], "Try again now.")
    jobs()

    ticket_events = publisher.on_channel(ticket_channel(ticket["id"]))
    assert [e.event for e in ticket_events] == ["ticket.message_created"]
    inbox_events = publisher.on_channel(user_channel(owner.user_id))
    assert [e.event for e in inbox_events] == ["notification.created"]
    emails = sender.sent_to("amina@kilima.example")
    assert any("Try again now." in e.get_body(("plain",)).get_content() for e in emails)


def test_staff_reply_emails_signed_out_owner(client, person, jobs, sender) -> None:
    ticket = open_anonymous(client)
    staff = person(Role.support_staff, name="Otieno")
    reply(client, staff, ticket["id"], "Fixed on our side.")
    jobs()

    emails = sender.sent_to("wanjiru@example.org")
    subjects = [email["Subject"] for email in emails]
    assert any(subject.startswith("Reply to support ticket") for subject in subjects)


def test_owner_reply_by_code_reaches_staff(client, person, jobs, publisher) -> None:
    ticket = open_anonymous(client)
    response = client.post(
        "/api/v1/support/tickets/access/messages",
        json={
            "tracking_code": ticket["tracking_code"],
            "email": "wanjiru@example.org",
            "body": "It happens on my phone too.",
        },
    )
    assert response.status_code == 201
    jobs()

    staff_events = publisher.on_channel(SUPPORT_CHANNEL)
    assert "ticket.message_created" in [e.event for e in staff_events]


def test_internal_notes_never_reach_owner(
    client, person, jobs, publisher, sender
) -> None:
    owner = person(Role.student, email="amina@kilima.example", name="Amina")
    ticket = open_signed_in(client, owner)
    staff = person(Role.support_staff, name="Otieno")
    note = reply(client, staff, ticket["id"], NOTE, internal=True)
    assert note.status_code == 201
    jobs()

    # Not in the owner's responses...
    as_owner = client.get(
        f"/api/v1/support/tickets/{ticket['id']}/messages", headers=owner.headers
    )
    assert NOTE not in as_owner.get_data(as_text=True)
    tracked = client.post(
        "/api/v1/support/tickets/access",
        json={"tracking_code": ticket["tracking_code"], "email": owner.claims["email"]},
    )
    assert NOTE not in tracked.get_data(as_text=True)
    # ...nor in any event on the owner's channels, nor in an email...
    owner_channels = {ticket_channel(ticket["id"]), user_channel(owner.user_id)}
    for event in publisher.events:
        assert not owner_channels & set(event.channels)
    assert all(NOTE not in email.as_string() for email in sender.messages)
    assert scalar("SELECT count(*) FROM notifications.notifications") == 0
    # ...while staff see it.
    as_staff = client.get(
        f"/api/v1/support/tickets/{ticket['id']}/messages", headers=staff.headers
    )
    assert NOTE in as_staff.get_data(as_text=True)


def test_internal_note_keeps_ticket_etag(client, person) -> None:
    owner = person(Role.student, email="amina@kilima.example", name="Amina")
    ticket = open_signed_in(client, owner)
    url = f"/api/v1/support/tickets/{ticket['id']}"
    before = client.get(url, headers=owner.headers).headers["ETag"]
    staff = person(Role.support_staff, name="Otieno")
    reply(client, staff, ticket["id"], NOTE, internal=True)

    after = client.get(url, headers=owner.headers).headers["ETag"]
    assert before == after


def test_owner_cannot_add_internal_note(client, person) -> None:
    owner = person(Role.student, email="amina@kilima.example", name="Amina")
    ticket = open_signed_in(client, owner)
    response = reply(client, owner, ticket["id"], "secret", internal=True)
    assert response.status_code == 403


def patch(client, who, ticket_id: str, changes: dict[str, Any]):
    url = f"/api/v1/support/tickets/{ticket_id}"
    etag = client.get(url, headers=who.headers).headers["ETag"]
    return client.patch(url, json=changes, headers={**who.headers, "If-Match": etag})


def test_status_moves_through_lifecycle(client, person) -> None:
    owner = person(Role.student, email="amina@kilima.example", name="Amina")
    ticket = open_signed_in(client, owner)
    staff = person(Role.support_staff)

    assert (
        patch(
            client, staff, ticket["id"], {"assignee_id": str(staff.user_id)}
        ).get_json()["status"]
        == "IN_PROGRESS"
    )
    resolved = patch(client, staff, ticket["id"], {"status": "RESOLVED"}).get_json()
    assert resolved["status"] == "RESOLVED"
    assert resolved["resolved_at"] is not None
    closed = patch(client, staff, ticket["id"], {"status": "CLOSED"}).get_json()
    assert closed["status"] == "CLOSED"


def test_reply_to_closed_ticket_is_409(client, person) -> None:
    owner = person(Role.student, email="amina@kilima.example", name="Amina")
    ticket = open_signed_in(client, owner)
    patch(client, owner, ticket["id"], {"status": "CLOSED"})

    response = reply(client, owner, ticket["id"], "One more thing")
    assert response.status_code == 409
    assert response.get_json()["ticket_status"] == "CLOSED"


def test_closed_ticket_cannot_reopen(client, person) -> None:
    owner = person(Role.student, email="amina@kilima.example", name="Amina")
    ticket = open_signed_in(client, owner)
    staff = person(Role.support_staff)
    patch(client, staff, ticket["id"], {"status": "CLOSED"})

    response = patch(client, staff, ticket["id"], {"status": "IN_PROGRESS"})
    assert response.status_code == 409


def test_owner_reply_reopens_resolved(client, person) -> None:
    owner = person(Role.student, email="amina@kilima.example", name="Amina")
    ticket = open_signed_in(client, owner)
    staff = person(Role.support_staff)
    patch(client, staff, ticket["id"], {"status": "RESOLVED"})

    reply(client, owner, ticket["id"], "Still broken.")
    status = client.get(
        f"/api/v1/support/tickets/{ticket['id']}", headers=owner.headers
    ).get_json()["status"]
    assert status == "IN_PROGRESS"


def test_owner_may_only_close(client, person) -> None:
    owner = person(Role.student, email="amina@kilima.example", name="Amina")
    ticket = open_signed_in(client, owner)

    response = patch(client, owner, ticket["id"], {"priority": "urgent"})
    assert response.status_code == 403


def test_patch_needs_if_match(client, person) -> None:
    owner = person(Role.student, email="amina@kilima.example", name="Amina")
    ticket = open_signed_in(client, owner)
    response = client.patch(
        f"/api/v1/support/tickets/{ticket['id']}",
        json={"status": "CLOSED"},
        headers=owner.headers,
    )
    assert response.status_code == 428


def test_reply_excludes_actor_socket(client, person, jobs, publisher) -> None:
    owner = person(Role.student, email="amina@kilima.example", name="Amina")
    ticket = open_signed_in(client, owner)
    client.post(
        f"/api/v1/support/tickets/{ticket['id']}/messages",
        json={"body": "Hello"},
        headers={**owner.headers, "X-Socket-ID": "42.17"},
    )
    jobs()

    event = publisher.on_channel(ticket_channel(ticket["id"]))[0]
    assert event.socket_id == "42.17"


def test_malformed_socket_header_is_400(client, person) -> None:
    owner = person(Role.student, email="amina@kilima.example", name="Amina")
    ticket = open_signed_in(client, owner)
    response = client.post(
        f"/api/v1/support/tickets/{ticket['id']}/messages",
        json={"body": "Hello"},
        headers={**owner.headers, "X-Socket-ID": "not-a-socket"},
    )
    assert response.status_code == 400
