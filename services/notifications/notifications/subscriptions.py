"""Rules for the private channels each caller may subscribe to.

- ``private-user-<id>``: that user only.
- ``private-org-<id>``: staff whose token lists the organisation.
- ``private-ticket-<id>``: the ticket's signed-in owner, and support staff.
- ``private-support``: support staff and system admins.

The public alerts channel needs no authorisation. Every other name is
refused, so a channel added later stays closed until a rule here opens it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from edulink.auth import Principal, Role
from edulink.errors import Forbidden, UnprocessableContent
from notifications.models import Ticket
from notifications.realtime import (
    CHANNEL_NAME,
    ORG_CHANNEL_PREFIX,
    SOCKET_ID,
    SUPPORT_CHANNEL,
    TICKET_CHANNEL_PREFIX,
    USER_CHANNEL_PREFIX,
    channel_id,
)
from notifications.support import STAFF_ROLES

ORG_ROLES = (Role.employer_admin, Role.institution_admin, Role.supervisor)


def check_subscription_request(socket_id: str, channel: str) -> None:
    """Reject a malformed socket id or channel name with 422."""
    errors = []
    if not SOCKET_ID.match(socket_id):
        errors.append(
            {"location": "form", "field": "socket_id", "detail": "Not a socket id."}
        )
    if not CHANNEL_NAME.match(channel):
        errors.append(
            {
                "location": "form",
                "field": "channel_name",
                "detail": "Not a channel name.",
            }
        )
    if errors:
        raise UnprocessableContent(
            "socket_id must look like 1234.5678 and channel_name be a Pusher "
            "channel name.",
            errors=errors,
        )


def may_subscribe(session: Session, *, actor: Principal, channel: str) -> bool:
    user_id = channel_id(channel, USER_CHANNEL_PREFIX)
    if user_id is not None:
        return actor.user_id == user_id
    org_id = channel_id(channel, ORG_CHANNEL_PREFIX)
    if org_id is not None:
        return actor.role in ORG_ROLES and org_id in actor.org_ids
    if channel == SUPPORT_CHANNEL:
        return actor.role in STAFF_ROLES
    ticket_id = channel_id(channel, TICKET_CHANNEL_PREFIX)
    if ticket_id is not None:
        if actor.role in STAFF_ROLES:
            return True
        owner = session.scalar(sa.select(Ticket.user_id).where(Ticket.id == ticket_id))
        return owner is not None and owner == actor.user_id
    return False


def authorize_subscription(
    session: Session, *, actor: Principal, socket_id: str, channel: str
) -> None:
    """Raise unless ``actor`` may subscribe ``socket_id`` to ``channel``."""
    check_subscription_request(socket_id, channel)
    if not channel.startswith("private-"):
        raise UnprocessableContent(
            f"{channel} is not a private channel; subscribe to it without "
            "authorisation.",
            errors=[
                {
                    "location": "form",
                    "field": "channel_name",
                    "detail": "Only private- channels are authorised here.",
                }
            ],
        )
    if not may_subscribe(session, actor=actor, channel=channel):
        raise Forbidden(f"You may not subscribe to {channel}.")
