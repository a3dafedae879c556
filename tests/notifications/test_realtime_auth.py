"""Channel authorisation: sign only the channels the caller's token allows."""

from __future__ import annotations

import uuid

import pytest

from edulink.auth import Role
from notifications.realtime import SUPPORT_CHANNEL, sign_subscription

AUTH_URL = "/api/v1/realtime/auth"
SOCKET = "1234.5678"


def authorize(client, who, channel: str, socket_id: str = SOCKET):
    return client.post(
        AUTH_URL,
        data={"socket_id": socket_id, "channel_name": channel},
        headers=who.headers,
    )


def test_own_user_channel_is_signed(client, person, publisher) -> None:
    student = person(Role.student)
    channel = f"private-user-{student.user_id}"
    response = authorize(client, student, channel)

    assert response.status_code == 200
    signature = sign_subscription(publisher.secret, SOCKET, channel)
    assert response.get_json() == {"auth": f"{publisher.key}:{signature}"}


def test_other_users_channel_is_refused(client, person) -> None:
    student = person(Role.student)
    response = authorize(client, student, f"private-user-{uuid.uuid4()}")
    assert response.status_code == 403


def test_system_admin_gets_no_pass(client, person) -> None:
    admin = person(Role.system_admin)
    response = authorize(client, admin, f"private-user-{uuid.uuid4()}")
    assert response.status_code == 403


def test_org_channel_needs_membership(client, person) -> None:
    org_id = uuid.uuid4()
    member = person(Role.employer_admin, org_ids=[org_id])
    outsider = person(Role.employer_admin, org_ids=[uuid.uuid4()])

    assert authorize(client, member, f"private-org-{org_id}").status_code == 200
    assert authorize(client, outsider, f"private-org-{org_id}").status_code == 403


def open_ticket(client, owner) -> str:
    response = client.post(
        "/api/v1/support/tickets",
        json={
            "subject": "Login loop",
            "category": "account",
            "message": "I keep returning to the login page.",
        },
        headers=owner.headers,
    )
    return response.get_json()["id"]


def test_ticket_channel_for_owner_and_staff(client, person) -> None:
    owner = person(Role.student, email="amina@kilima.example", name="Amina")
    ticket_id = open_ticket(client, owner)
    channel = f"private-ticket-{ticket_id}"

    assert authorize(client, owner, channel).status_code == 200
    assert authorize(client, person(Role.support_staff), channel).status_code == 200
    assert authorize(client, person(Role.student), channel).status_code == 403


def test_unknown_ticket_channel_is_refused(client, person) -> None:
    student = person(Role.student)
    response = authorize(client, student, f"private-ticket-{uuid.uuid4()}")
    assert response.status_code == 403


def test_support_channel_is_staff_only(client, person) -> None:
    assert (
        authorize(client, person(Role.support_staff), SUPPORT_CHANNEL).status_code
        == 200
    )
    assert authorize(client, person(Role.student), SUPPORT_CHANNEL).status_code == 403


@pytest.mark.parametrize(
    "channel", ["private-anything", "private-user-not-a-uuid", "private-admin"]
)
def test_unknown_private_channels_are_refused(client, person, channel) -> None:
    response = authorize(client, person(Role.system_admin), channel)
    assert response.status_code == 403


def test_public_channel_needs_no_auth(client, person) -> None:
    response = authorize(client, person(Role.student), "platform-alerts")
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("socket_id", "channel"),
    [("abc", "private-support"), ("1.2", "private support"), ("1.2", "")],
)
def test_malformed_request_is_422(client, person, socket_id, channel) -> None:
    staff = person(Role.support_staff)
    response = authorize(client, staff, channel, socket_id=socket_id)
    assert response.status_code == 422


def test_anonymous_is_401(client) -> None:
    response = client.post(
        AUTH_URL, data={"socket_id": SOCKET, "channel_name": SUPPORT_CHANNEL}
    )
    assert response.status_code == 401
