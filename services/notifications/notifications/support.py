"""Business rules of support tickets.

Anyone opens a ticket, signed in or not, and gets a tracking code. A signed-out
owner reaches the ticket with the tracking code and the email address it was
opened with. The owner and support staff reply, and staff may also add internal
notes. No response or event to the owner contains an internal note, because
the owner's queries filter notes out and note events go to the staff
channel only.

Status moves OPEN -> IN_PROGRESS (first staff reply or an assignment) ->
RESOLVED -> CLOSED. An owner's reply reopens a RESOLVED ticket, and a CLOSED
ticket takes no replies and no changes.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from edulink.auth import Principal, Role
from edulink.errors import Conflict, Forbidden, NotFound, UnprocessableContent
from edulink.jobs import Queue
from edulink.pagination import CursorCodec, Page, keyset_page, scope_of
from notifications import services
from notifications.contracts import PUSH_EVENT, QUEUE, SEND_EMAIL, Notify
from notifications.models import (
    AuthorRole,
    Kind,
    Ticket,
    TicketMessage,
    TicketStatus,
)
from notifications.realtime import SUPPORT_CHANNEL, encode_event_data, ticket_channel

log = logging.getLogger(__name__)

# No 0/O, 1/I/L or U, so a code read aloud or typed from paper is unambiguous.
TRACKING_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
TRACKING_CODE_LENGTH = 10
TRACKING_CODE_ATTEMPTS = 5

STAFF_ROLES = (Role.support_staff, Role.system_admin)

TRANSITIONS: dict[str, frozenset[str]] = {
    TicketStatus.OPEN: frozenset(
        {TicketStatus.IN_PROGRESS, TicketStatus.RESOLVED, TicketStatus.CLOSED}
    ),
    TicketStatus.IN_PROGRESS: frozenset({TicketStatus.RESOLVED, TicketStatus.CLOSED}),
    TicketStatus.RESOLVED: frozenset({TicketStatus.IN_PROGRESS, TicketStatus.CLOSED}),
    TicketStatus.CLOSED: frozenset(),
}

MESSAGE_EVENT = "ticket.message_created"
TICKET_CREATED_EVENT = "ticket.created"
TICKET_UPDATED_EVENT = "ticket.updated"


@dataclass(frozen=True)
class Author:
    """The writer of a message: the ticket's owner or a member of support staff."""

    role: AuthorRole
    user_id: uuid.UUID | None
    name: str


def is_staff(actor: Principal | None) -> bool:
    return actor is not None and actor.role in STAFF_ROLES


# Tracking codes


def new_tracking_code() -> str:
    return "".join(
        secrets.choice(TRACKING_ALPHABET) for _ in range(TRACKING_CODE_LENGTH)
    )


def format_tracking_code(code: str) -> str:
    """Return the code as people see it, in two groups: ``ABCDE-FGH23``."""
    half = TRACKING_CODE_LENGTH // 2
    return f"{code[:half]}-{code[half:]}"


def normalize_tracking_code(text: str) -> str | None:
    """Return the stored form of a typed code, or None if it cannot be one."""
    code = "".join(text.split()).replace("-", "").upper()
    if len(code) != TRACKING_CODE_LENGTH:
        return None
    if any(character not in TRACKING_ALPHABET for character in code):
        return None
    return code


# Events and notifications


def _push(
    session: Session,
    *,
    channels: list[str],
    event: str,
    data: Mapping[str, Any],
    socket_id: str | None,
    job_id: str,
) -> None:
    Queue(QUEUE, session=session).enqueue_call(
        PUSH_EVENT,
        kwargs={
            "channels": channels,
            "event": event,
            "data": encode_event_data(data),
            "socket_id": socket_id,
        },
        job_id=job_id,
    )


def _send_email(
    session: Session, *, to: str, template: str, context: dict[str, str], job_id: str
) -> None:
    Queue(QUEUE, session=session).enqueue_call(
        SEND_EMAIL,
        kwargs={"to": to, "template": template, "context": context},
        job_id=job_id,
    )


def _ticket_keys(ticket_id: uuid.UUID) -> list[list[str]]:
    return [
        ["support", "tickets", str(ticket_id)],
        ["support", "tickets", str(ticket_id), "messages"],
        ["support", "tickets"],
    ]


# Opening and finding tickets


def open_ticket(
    session: Session,
    *,
    actor: Principal | None,
    data: Mapping[str, Any],
    socket_id: str | None,
) -> Ticket:
    """Open a ticket with its first message, confirm it by email, tell staff."""
    user_id = actor.user_id if actor is not None else None
    name = data.get("name") or (actor.name if actor else None)
    email = data.get("email") or (actor.email if actor else None)
    missing = [
        field for field, value in (("name", name), ("email", email)) if not value
    ]
    if missing:
        raise UnprocessableContent(
            "Give your name and email address, or sign in with an account that has "
            "them.",
            errors=[
                {"location": "json", "field": field, "detail": "Missing data."}
                for field in missing
            ],
        )
    assert name is not None
    assert email is not None

    ticket = _insert_with_unique_code(
        session,
        Ticket(
            user_id=user_id,
            name=name.strip(),
            email=email.strip(),
            subject=data["subject"].strip(),
            category=data["category"],
            priority=data.get("priority", "normal"),
            status=TicketStatus.OPEN.value,
        ),
    )
    session.add(
        TicketMessage(
            ticket_id=ticket.id,
            author_role=AuthorRole.OWNER.value,
            author_id=user_id,
            author_name=ticket.name,
            body=data["message"],
            internal=False,
        )
    )
    session.flush()
    _send_email(
        session,
        to=ticket.email,
        template="ticket_created",
        context={
            "name": ticket.name,
            "subject": ticket.subject,
            "tracking_code": format_tracking_code(ticket.tracking_code),
        },
        job_id=f"ticket:{ticket.id}:created-email",
    )
    _push(
        session,
        channels=[SUPPORT_CHANNEL],
        event=TICKET_CREATED_EVENT,
        data={"ticket_id": str(ticket.id), "refresh": [["support", "tickets"]]},
        socket_id=socket_id,
        job_id=f"ticket:{ticket.id}:created-event",
    )
    log.info("ticket %s opened (%s)", ticket.id, ticket.category)
    return ticket


def _insert_with_unique_code(session: Session, ticket: Ticket) -> Ticket:
    """Insert ``ticket`` with a fresh tracking code, drawing again on a collision."""
    for _ in range(TRACKING_CODE_ATTEMPTS):
        ticket.tracking_code = new_tracking_code()
        try:
            with session.begin_nested():
                session.add(ticket)
                session.flush()
            return ticket
        except IntegrityError:
            log.warning("tracking code collision; drawing another")
    raise RuntimeError(
        f"no unused tracking code after {TRACKING_CODE_ATTEMPTS} attempts"
    )


def get_ticket(session: Session, *, actor: Principal, ticket_id: uuid.UUID) -> Ticket:
    """Load a ticket the actor owns or handles as staff, else NotFound."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None or not (
        is_staff(actor)
        or (ticket.user_id is not None and ticket.user_id == actor.user_id)
    ):
        raise NotFound(f"Ticket {ticket_id} does not exist.")
    return ticket


def find_by_tracking_code(
    session: Session, *, tracking_code: str, email: str
) -> Ticket:
    """Load a ticket by its tracking code and the email address it was opened with.

    A wrong code and a wrong address fail alike, so neither can be probed.
    """
    not_found = NotFound("No ticket has this tracking code and email address.")
    code = normalize_tracking_code(tracking_code)
    if code is None:
        raise not_found
    ticket = session.scalar(sa.select(Ticket).where(Ticket.tracking_code == code))
    if ticket is None or ticket.email.lower() != email.strip().lower():
        raise not_found
    return ticket


def list_tickets(
    session: Session,
    *,
    actor: Principal,
    codec: CursorCodec,
    limit: int,
    cursor: str | None,
    status: str | None = None,
    assigned_to_me: bool = False,
) -> Page[Ticket]:
    """List staff's tickets (all) or a user's own, newest first."""
    statement = sa.select(Ticket)
    if not is_staff(actor):
        if actor.user_id is None:
            raise Forbidden("Services have no tickets. Call this endpoint as a user.")
        statement = statement.where(Ticket.user_id == actor.user_id)
    if status:
        statement = statement.where(Ticket.status == status)
    if assigned_to_me:
        statement = statement.where(Ticket.assignee_id == actor.user_id)
    return keyset_page(
        session,
        statement,
        order_by=(Ticket.created_at, Ticket.id),
        codec=codec,
        scope=scope_of(
            "tickets", actor=actor.subject, status=status, mine=assigned_to_me
        ),
        limit=limit,
        cursor=cursor,
        descending=True,
    )


def list_messages(
    session: Session,
    *,
    ticket: Ticket,
    include_internal: bool,
    codec: CursorCodec,
    limit: int,
    cursor: str | None,
) -> Page[TicketMessage]:
    """List a ticket's messages, oldest first; internal notes only for staff."""
    statement = sa.select(TicketMessage).where(TicketMessage.ticket_id == ticket.id)
    if not include_internal:
        statement = statement.where(TicketMessage.internal.is_(False))
    return keyset_page(
        session,
        statement,
        order_by=(TicketMessage.created_at, TicketMessage.id),
        codec=codec,
        scope=scope_of("ticket-messages", ticket=ticket.id, internal=include_internal),
        limit=limit,
        cursor=cursor,
    )


def author_of(actor: Principal, ticket: Ticket) -> Author:
    """Return the actor as an author on ``ticket``; get_ticket checked access."""
    name = actor.name or actor.email or ("Support" if is_staff(actor) else ticket.name)
    if is_staff(actor):
        return Author(AuthorRole.STAFF, actor.user_id, name)
    return Author(AuthorRole.OWNER, actor.user_id, ticket.name)


def owner_author(ticket: Ticket) -> Author:
    """Return the author of a reply sent signed out, with the tracking code."""
    return Author(AuthorRole.OWNER, None, ticket.name)


# Replies


def reply(
    session: Session,
    *,
    ticket: Ticket,
    author: Author,
    body: str,
    internal: bool,
    socket_id: str | None,
    app_url: str | None = None,
) -> TicketMessage:
    """Add a message and notify the other side; internal notes reach staff only."""
    if ticket.status == TicketStatus.CLOSED:
        raise Conflict(
            f"Ticket {format_tracking_code(ticket.tracking_code)} is closed and takes "
            "no replies. Open a new ticket.",
            ticket_status=ticket.status,
        )
    if internal and author.role != AuthorRole.STAFF:
        raise Forbidden("Only support staff can add internal notes.")

    message = TicketMessage(
        ticket_id=ticket.id,
        author_role=author.role.value,
        author_id=author.user_id,
        author_name=author.name,
        body=body,
        internal=internal,
    )
    session.add(message)
    if not internal:
        _advance_on_reply(ticket, author)
    session.flush()

    event = {
        "ticket_id": str(ticket.id),
        "message_id": str(message.id),
        "internal": internal,
        "refresh": _ticket_keys(ticket.id),
    }
    channels = (
        [SUPPORT_CHANNEL] if internal else [ticket_channel(ticket.id), SUPPORT_CHANNEL]
    )
    _push(
        session,
        channels=channels,
        event=MESSAGE_EVENT,
        data=event,
        socket_id=socket_id,
        job_id=f"ticket-message:{message.id}:event",
    )
    if not internal:
        if author.role == AuthorRole.STAFF:
            _notify_owner(session, ticket=ticket, message=message, app_url=app_url)
        else:
            _notify_assignee(session, ticket=ticket, message=message)
    return message


def _advance_on_reply(ticket: Ticket, author: Author) -> None:
    if author.role == AuthorRole.STAFF and ticket.status == TicketStatus.OPEN:
        ticket.status = TicketStatus.IN_PROGRESS.value
    elif author.role == AuthorRole.OWNER and ticket.status == TicketStatus.RESOLVED:
        ticket.status = TicketStatus.IN_PROGRESS.value
        ticket.resolved_at = None
    # Bumps the version, and with it the ETag clients hold.
    ticket.updated_at = datetime.now(UTC)


def _notify_owner(
    session: Session, *, ticket: Ticket, message: TicketMessage, app_url: str | None
) -> None:
    code = format_tracking_code(ticket.tracking_code)
    if ticket.user_id is None:
        # Signed-out owners have no inbox and no real-time channel: email only.
        _send_email(
            session,
            to=ticket.email,
            template="ticket_reply",
            context={
                "name": ticket.name,
                "subject": ticket.subject,
                "tracking_code": code,
                "body": message.body,
            },
            job_id=f"ticket-message:{message.id}:email",
        )
        return
    services.notify(
        session,
        notify=Notify(
            recipient_user_id=ticket.user_id,
            recipient_email=ticket.email,
            recipient_name=ticket.name,
            kind=Kind.TICKET_REPLY.value,
            title=f"Support replied to ticket {code}",
            body=message.body,
            entity_type="ticket",
            entity_id=ticket.id,
            refresh=[*_ticket_keys(ticket.id), services.INBOX_KEY],
        ),
        idempotency_key=f"ticket-message:{message.id}",
        app_url=app_url,
    )


def _notify_assignee(
    session: Session, *, ticket: Ticket, message: TicketMessage
) -> None:
    # NOTE: staff get no email, because tickets store only the assignee's id.
    if ticket.assignee_id is None:
        return
    code = format_tracking_code(ticket.tracking_code)
    services.notify(
        session,
        notify=Notify(
            recipient_user_id=ticket.assignee_id,
            kind=Kind.TICKET_REPLY.value,
            title=f"{ticket.name} replied to ticket {code}",
            body=message.body,
            entity_type="ticket",
            entity_id=ticket.id,
            refresh=[*_ticket_keys(ticket.id), services.INBOX_KEY],
        ),
        idempotency_key=f"ticket-message:{message.id}",
    )


# Status, assignment and priority


def update_ticket(
    session: Session,
    *,
    actor: Principal,
    ticket: Ticket,
    changes: Mapping[str, Any],
    socket_id: str | None,
) -> Ticket:
    """Apply staff's changes, or an owner's closing; tell both sides."""
    if ticket.status == TicketStatus.CLOSED:
        raise Conflict(
            "The ticket is closed and cannot change.", ticket_status=ticket.status
        )
    owner_closes = set(changes) == {"status"} and changes["status"] == "CLOSED"
    if not is_staff(actor) and not owner_closes:
        raise Forbidden("A ticket's owner can only close it; staff change the rest.")

    if "priority" in changes:
        ticket.priority = changes["priority"]
    if "assignee_id" in changes:
        ticket.assignee_id = changes["assignee_id"]
        if ticket.assignee_id is not None and ticket.status == TicketStatus.OPEN:
            ticket.status = TicketStatus.IN_PROGRESS.value
    if "status" in changes and changes["status"] != ticket.status:
        _move(ticket, changes["status"])
    ticket.updated_at = datetime.now(UTC)
    session.flush()

    _push(
        session,
        channels=[ticket_channel(ticket.id), SUPPORT_CHANNEL],
        event=TICKET_UPDATED_EVENT,
        data={
            "ticket_id": str(ticket.id),
            "status": ticket.status,
            "refresh": [["support", "tickets", str(ticket.id)], ["support", "tickets"]],
        },
        socket_id=socket_id,
        job_id=f"ticket:{ticket.id}:v{ticket.version}:event",
    )
    return ticket


def _move(ticket: Ticket, status: str) -> None:
    allowed = TRANSITIONS[TicketStatus(ticket.status)]
    if status not in allowed:
        raise Conflict(
            f"A {ticket.status} ticket cannot move to {status}.",
            ticket_status=ticket.status,
            allowed=sorted(allowed),
        )
    now = datetime.now(UTC)
    ticket.status = status
    if status == TicketStatus.RESOLVED:
        ticket.resolved_at = now
    elif status == TicketStatus.CLOSED:
        ticket.closed_at = now
    elif status == TicketStatus.IN_PROGRESS:
        ticket.resolved_at = None
