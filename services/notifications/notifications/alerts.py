"""Business rules of platform alerts.

A system admin posts an alert. One event on the public alerts channel
reaches every connected client at once, and the alert is listed for everyone
until it expires. With a list of recipients it is also put into each one's inbox,
by one background job that inserts the rows in batches.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from edulink.auth import Principal
from edulink.errors import NotFound, UnprocessableContent
from edulink.jobs import Queue
from edulink.pagination import CursorCodec, Page, keyset_page, scope_of
from notifications import services
from notifications.contracts import FAN_OUT_ALERT, PUSH_EVENT, QUEUE
from notifications.models import Alert, Kind
from notifications.realtime import ALERTS_CHANNEL, EventTooLarge, encode_event_data

log = logging.getLogger(__name__)

ALERT_EVENT = "alert.created"
ALERT_ENDED_EVENT = "alert.ended"
MAX_LIFETIME = timedelta(days=30)
TITLE_LENGTH = 200


def alert_event(alert: Alert, *, in_inboxes: bool) -> dict[str, Any]:
    refresh: list[list[str]] = [["alerts"]]
    if in_inboxes:
        refresh.append(services.INBOX_KEY)
    return {
        "alert": {
            "id": str(alert.id),
            "severity": alert.severity,
            "message": alert.message,
            "expires_at": alert.expires_at.isoformat(),
        },
        "refresh": refresh,
    }


def _invalid(field: str, detail: str) -> UnprocessableContent:
    return UnprocessableContent(
        detail, errors=[{"location": "json", "field": field, "detail": detail}]
    )


def create_alert(
    session: Session,
    *,
    actor: Principal,
    severity: str,
    message: str,
    expires_at: datetime,
    user_ids: Sequence[uuid.UUID] = (),
    socket_id: str | None = None,
) -> Alert:
    """Store an alert and enqueue its broadcast and, with recipients, its fan-out."""
    now = datetime.now(UTC)
    if expires_at <= now:
        raise _invalid("expires_at", "The expiry must be in the future.")
    if expires_at > now + MAX_LIFETIME:
        raise _invalid(
            "expires_at", f"An alert lasts at most {MAX_LIFETIME.days} days."
        )
    assert actor.user_id is not None, "only users post alerts"

    alert = Alert(
        severity=severity,
        message=message,
        expires_at=expires_at,
        created_by=actor.user_id,
    )
    session.add(alert)
    session.flush()
    try:
        data = encode_event_data(alert_event(alert, in_inboxes=bool(user_ids)))
    except EventTooLarge as error:
        raise _invalid(
            "message",
            f"The message makes a real-time event of {error.size} bytes; "
            "shorten it to fit in 10,240 bytes.",
        ) from None

    queue = Queue(QUEUE, session=session)
    queue.enqueue_call(
        PUSH_EVENT,
        kwargs={
            "channels": [ALERTS_CHANNEL],
            "event": ALERT_EVENT,
            "data": data,
            "socket_id": socket_id,
        },
        job_id=f"alert:{alert.id}:event",
        at_front=True,
    )
    if user_ids:
        queue.enqueue_call(
            FAN_OUT_ALERT,
            kwargs={"alert_id": alert.id, "user_ids": list(user_ids)},
            job_id=f"alert:{alert.id}:fan-out",
        )
    log.info(
        "alert %s (%s) posted until %s for %d inboxes",
        alert.id,
        severity,
        expires_at.isoformat(),
        len(user_ids),
    )
    return alert


def list_active(
    session: Session, *, codec: CursorCodec, limit: int, cursor: str | None
) -> Page[Alert]:
    """List the alerts that have not expired, newest first."""
    return keyset_page(
        session,
        sa.select(Alert).where(Alert.expires_at > sa.func.now()),
        order_by=(Alert.created_at, Alert.id),
        codec=codec,
        scope=scope_of("alerts"),
        limit=limit,
        cursor=cursor,
        descending=True,
    )


def end_alert(
    session: Session, *, alert_id: uuid.UUID, socket_id: str | None = None
) -> Alert:
    """Expire an alert now and tell connected clients to drop it."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"Alert {alert_id} does not exist.")
    now = datetime.now(UTC)
    if alert.expires_at > now:
        alert.expires_at = now
        session.flush()
        Queue(QUEUE, session=session).enqueue_call(
            PUSH_EVENT,
            kwargs={
                "channels": [ALERTS_CHANNEL],
                "event": ALERT_ENDED_EVENT,
                "data": encode_event_data(
                    {"alert": {"id": str(alert.id)}, "refresh": [["alerts"]]}
                ),
                "socket_id": socket_id,
            },
            job_id=f"alert:{alert.id}:ended-event",
            at_front=True,
        )
    return alert


def fan_out_alert(
    session: Session, *, alert_id: uuid.UUID, user_ids: Sequence[uuid.UUID]
) -> int:
    """Put the alert into each user's inbox; returns the rows inserted."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"Alert {alert_id} does not exist.")
    inserted = services.fan_out(
        session,
        user_ids=user_ids,
        kind=Kind.SYSTEM_ALERT.value,
        title=_title(alert),
        body=alert.message,
        entity_type="alert",
        entity_id=alert.id,
        key_prefix=f"alert:{alert.id}:",
    )
    log.info("alert %s reached %d new inboxes", alert.id, inserted)
    return inserted


def _title(alert: Alert) -> str:
    first_line = alert.message.strip().splitlines()[0] if alert.message.strip() else ""
    title = f"{alert.severity.capitalize()} alert: {first_line}"
    if len(title) > TITLE_LENGTH:
        title = title[: TITLE_LENGTH - 3] + "..."
    return title
