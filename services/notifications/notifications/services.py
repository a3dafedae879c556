"""Business rules of the inbox: storing notifications, delivering them, reading them.

A notification is stored first, then delivered by separate jobs: one real-time
event and one email, each by the recipient's preferences. The jobs are
enqueued in the transaction that stores the row, so they exist exactly when
it does, and a Pusher outage never holds up the email or the other way round.
Functions take an explicit session; callers commit.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from edulink.auth import Principal
from edulink.errors import Forbidden, NotFound
from edulink.jobs import Queue
from edulink.pagination import CursorCodec, Page, keyset_page, scope_of
from notifications.contracts import PUSH_EVENT, QUEUE, SEND_EMAIL, Notify
from notifications.models import Kind, Notification, Preference
from notifications.realtime import encode_event_data, org_channel, user_channel

log = logging.getLogger(__name__)

NOTIFICATION_EVENT = "notification.created"
# Sent to the reader's own channel, so their other tabs update the badge.
READ_EVENT = "notification.read"
INBOX_KEY = ["notifications"]

QueryKeys = list[list[Any]]


def _application_keys(entity_id: str, for_org: bool) -> QueryKeys:
    listing = ["applications"] if for_org else ["applications", "mine"]
    return [["applications", entity_id], listing]


# Client query keys to refetch per entity type, when the producer sends none.
# TanStack Query matches keys by prefix, so ["notifications"] also refreshes
# ["notifications", "unread-count"].
DEFAULT_ENTITY_KEYS: dict[str, Callable[[str, bool], QueryKeys]] = {
    "application": _application_keys,
    "opportunity": lambda entity_id, _org: [["opportunities", entity_id]],
    "document": lambda entity_id, _org: [["documents", entity_id], ["documents"]],
    "affiliation_claim": lambda entity_id, _org: [
        ["claims", entity_id],
        ["students", "me"],
    ],
    "ticket": lambda entity_id, _org: [["support", "tickets", entity_id]],
    "alert": lambda _entity_id, _org: [["alerts"]],
}


@dataclass(frozen=True)
class Delivery:
    """The delivery channels a user chose for one kind. The inbox is always on."""

    email: bool = True
    realtime: bool = True


def default_refresh(
    entity_type: str | None, entity_id: uuid.UUID | None, *, for_org: bool
) -> QueryKeys:
    keys: QueryKeys = []
    builder = DEFAULT_ENTITY_KEYS.get(entity_type or "")
    if builder is not None and entity_id is not None:
        keys.extend(builder(str(entity_id), for_org))
    keys.append(INBOX_KEY)
    return keys


# Storing and delivering


def store_notification(
    session: Session, *, notify: Notify, idempotency_key: str
) -> Notification | None:
    """Insert the notification, or return None when its key was stored already."""
    refresh = notify.refresh or default_refresh(
        notify.entity_type,
        notify.entity_id,
        for_org=notify.recipient_org_id is not None,
    )
    statement = (
        insert(Notification)
        .values(
            id=uuid.uuid4(),
            version=1,
            recipient_user_id=notify.recipient_user_id,
            recipient_org_id=notify.recipient_org_id,
            kind=notify.kind,
            title=notify.title,
            body=notify.body,
            entity_type=notify.entity_type,
            entity_id=notify.entity_id,
            refresh=refresh,
            idempotency_key=idempotency_key,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(Notification)
    )
    return session.scalars(statement).first()


def delivery_for(session: Session, user_id: uuid.UUID | None, kind: str) -> Delivery:
    """Return the user's delivery choice for ``kind``; organisations get defaults."""
    if user_id is None:
        return Delivery()
    row = session.get(Preference, (user_id, kind))
    if row is None:
        return Delivery()
    return Delivery(email=row.email, realtime=row.realtime)


def notification_event(notification: Notification) -> dict[str, Any]:
    return {
        "notification": {
            "id": str(notification.id),
            "kind": notification.kind,
            "title": notification.title,
            "entity_type": notification.entity_type,
            "entity_id": str(notification.entity_id)
            if notification.entity_id
            else None,
            "created_at": notification.created_at.isoformat(),
        },
        "refresh": notification.refresh,
    }


def dispatch_notification(
    session: Session,
    *,
    notification: Notification,
    email: str | None,
    name: str | None,
    socket_id: str | None,
    app_url: str | None,
) -> Delivery:
    """Enqueue the real-time event and the email of a stored notification.

    Job ids derive from the notification's id, so dispatching twice enqueues
    each job once.
    """
    delivery = delivery_for(session, notification.recipient_user_id, notification.kind)
    queue = Queue(QUEUE, session=session)
    if delivery.realtime:
        channel = (
            user_channel(notification.recipient_user_id)
            if notification.recipient_user_id
            else org_channel(notification.recipient_org_id)  # type: ignore[arg-type]
        )
        queue.enqueue_call(
            PUSH_EVENT,
            kwargs={
                "channels": [channel],
                "event": NOTIFICATION_EVENT,
                "data": encode_event_data(notification_event(notification)),
                "socket_id": socket_id,
            },
            job_id=f"notification:{notification.id}:push",
        )
    if delivery.email and email:
        context = {"title": notification.title, "body": notification.body}
        if name:
            context["name"] = name
        if app_url:
            context["link"] = f"{app_url.rstrip('/')}/notifications"
        queue.enqueue_call(
            SEND_EMAIL,
            kwargs={"to": email, "template": "notification", "context": context},
            job_id=f"notification:{notification.id}:email",
        )
    return delivery


def notify(
    session: Session,
    *,
    notify: Notify,
    idempotency_key: str,
    app_url: str | None = None,
) -> Notification | None:
    """Store a notification and enqueue its deliveries; None if it was a repeat."""
    notification = store_notification(
        session, notify=notify, idempotency_key=idempotency_key
    )
    if notification is None:
        log.info("notification %s was stored already; nothing to do", idempotency_key)
        return None
    delivery = dispatch_notification(
        session,
        notification=notification,
        email=notify.recipient_email,
        name=notify.recipient_name,
        socket_id=notify.socket_id,
        app_url=app_url,
    )
    log.info(
        "stored notification %s (%s); real time %s, email %s",
        notification.id,
        notification.kind,
        "on" if delivery.realtime else "off",
        "on" if delivery.email and notify.recipient_email else "off",
    )
    return notification


# The inbox


def _require_user(actor: Principal) -> uuid.UUID:
    if actor.user_id is None:
        raise Forbidden("Services have no inbox. Call this endpoint as a user.")
    return actor.user_id


def inbox_of(actor: Principal) -> sa.ColumnElement[bool]:
    """SQL condition for the notifications in ``actor``'s inbox.

    That is their own, plus those sent to the organisations in their token.
    """
    user_id = _require_user(actor)
    mine = Notification.recipient_user_id == user_id
    if actor.org_ids:
        return sa.or_(mine, Notification.recipient_org_id.in_(actor.org_ids))
    return mine


def list_notifications(
    session: Session,
    *,
    actor: Principal,
    codec: CursorCodec,
    limit: int,
    cursor: str | None,
    unread: bool | None = None,
) -> Page[Notification]:
    """Return one page of the inbox, newest first."""
    statement = sa.select(Notification).where(inbox_of(actor))
    if unread is True:
        statement = statement.where(Notification.read_at.is_(None))
    elif unread is False:
        statement = statement.where(Notification.read_at.is_not(None))
    return keyset_page(
        session,
        statement,
        order_by=(Notification.created_at, Notification.id),
        codec=codec,
        scope=scope_of("notifications", actor=actor.subject, unread=unread),
        limit=limit,
        cursor=cursor,
        descending=True,
    )


def unread_count(session: Session, *, actor: Principal) -> int:
    statement = sa.select(sa.func.count()).where(
        inbox_of(actor), Notification.read_at.is_(None)
    )
    return session.scalar(statement) or 0


def _push_read(
    session: Session, *, actor: Principal, data: dict[str, Any], socket_id: str | None
) -> None:
    """Tell the actor's other tabs and devices to refetch the inbox."""
    assert actor.user_id is not None
    Queue(QUEUE, session=session).enqueue_call(
        PUSH_EVENT,
        kwargs={
            "channels": [user_channel(actor.user_id)],
            "event": READ_EVENT,
            "data": encode_event_data({**data, "refresh": [INBOX_KEY]}),
            "socket_id": socket_id,
        },
    )


def mark_read(
    session: Session,
    *,
    actor: Principal,
    notification_id: uuid.UUID,
    socket_id: str | None = None,
) -> Notification:
    """Mark one notification read; reading it again keeps the first read time.

    NOTE: an organisation's notification has one read state, so the first of
    its staff to read it marks it read for all of them.
    """
    notification = session.scalar(
        sa.select(Notification).where(
            Notification.id == notification_id, inbox_of(actor)
        )
    )
    if notification is None:
        raise NotFound(f"Notification {notification_id} does not exist.")
    if notification.read_at is None:
        notification.read_at = sa.func.now()  # type: ignore[assignment]
        session.flush()
        session.refresh(notification)
        _push_read(
            session,
            actor=actor,
            data={"notification_ids": [str(notification.id)]},
            socket_id=socket_id,
        )
    return notification


def mark_all_read(
    session: Session,
    *,
    actor: Principal,
    until: datetime | None = None,
    socket_id: str | None = None,
) -> int:
    """Mark every unread notification read, or those created up to ``until``.

    Returns how many changed.
    """
    statement = (
        sa.update(Notification)
        .where(inbox_of(actor), Notification.read_at.is_(None))
        .values(read_at=sa.func.now(), version=Notification.version + 1)
        .execution_options(synchronize_session=False)
    )
    if until is not None:
        statement = statement.where(Notification.created_at <= until)
    updated: int = session.execute(statement).rowcount  # type: ignore[attr-defined]
    if updated:
        _push_read(session, actor=actor, data={"all": True}, socket_id=socket_id)
    return updated


# Preferences


def list_preferences(session: Session, *, actor: Principal) -> list[dict[str, Any]]:
    """Return the delivery choice for every known kind, defaults filled in."""
    user_id = _require_user(actor)
    rows = {
        row.kind: row
        for row in session.scalars(
            sa.select(Preference).where(Preference.user_id == user_id)
        )
    }
    preferences = []
    for kind in Kind:
        row = rows.get(kind.value)
        delivery = Delivery() if row is None else Delivery(row.email, row.realtime)
        preferences.append(
            {
                "kind": kind.value,
                "in_app": True,
                "email": delivery.email,
                "realtime": delivery.realtime,
            }
        )
    return preferences


def set_preference(
    session: Session, *, actor: Principal, kind: str, email: bool, realtime: bool
) -> dict[str, Any]:
    user_id = _require_user(actor)
    if kind not in {member.value for member in Kind}:
        raise NotFound(
            f"There is no notification kind {kind!r}.",
            kinds=sorted(member.value for member in Kind),
        )
    statement = insert(Preference).values(
        user_id=user_id, kind=kind, email=email, realtime=realtime
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[Preference.user_id, Preference.kind],
            set_={"email": email, "realtime": realtime, "updated_at": sa.func.now()},
        )
    )
    return {"kind": kind, "in_app": True, "email": email, "realtime": realtime}


def fan_out(
    session: Session,
    *,
    user_ids: Sequence[uuid.UUID],
    kind: str,
    title: str,
    body: str,
    entity_type: str,
    entity_id: uuid.UUID,
    key_prefix: str,
    batch_size: int = 5000,
) -> int:
    """Insert one notification per user, ``batch_size`` rows per statement.

    Each row's idempotency key is ``key_prefix`` plus the user id, so a rerun
    inserts only the rows still missing. Returns how many rows were inserted.
    """
    refresh = default_refresh(entity_type, entity_id, for_org=False)
    statement = sa.text(
        """
        INSERT INTO notifications.notifications
            (id, version, recipient_user_id, kind, title, body, entity_type,
             entity_id, refresh, idempotency_key)
        SELECT gen_random_uuid(), 1, user_id, :kind, :title, :body, :entity_type,
               :entity_id, CAST(:refresh AS jsonb), :key_prefix || user_id::text
        FROM unnest(CAST(:user_ids AS uuid[])) AS user_id
        ON CONFLICT (idempotency_key) DO NOTHING
        """
    )
    inserted = 0
    unique_ids = list(dict.fromkeys(user_ids))
    for start in range(0, len(unique_ids), batch_size):
        result = session.execute(
            statement,
            {
                "kind": kind,
                "title": title,
                "body": body,
                "entity_type": entity_type,
                "entity_id": entity_id,
                "refresh": json.dumps(refresh),
                "key_prefix": key_prefix,
                "user_ids": unique_ids[start : start + batch_size],
            },
        )
        inserted += result.rowcount  # type: ignore[attr-defined]
    return inserted
