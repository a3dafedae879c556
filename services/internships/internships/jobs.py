"""Job contracts this service produces and consumes, its handlers and schedules.

Every side effect of an application's status change is a job enqueued in the
same transaction as the change, so it happens exactly when the change commits.
Jobs for other services wait on their queue until that service's worker runs.

Jobs and when they are enqueued (the queue is the consuming service):

- ``ledger.append`` (internships, through :data:`internships.models.LEDGER`):
  every status change, every automatic close.
- ``notifications.notify`` (notifications): every status change, to the
  student; a withdrawal and a deadline 24 hours away, to the employer.
- ``students.record_trust_event`` (students): COMPLETED and CERTIFIED.
- ``documents.request_certificate`` (documents): CERTIFIED.
- ``internships.close_expired_opportunities`` (internships): every 5 minutes.
- ``internships.remind_deadlines`` (internships): every 15 minutes.
- ``internships.purge_idempotency_records`` (internships): daily.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Literal

import pydantic
import sqlalchemy as sa
from flask import has_request_context, request
from sqlalchemy.orm import Session

from edulink.auth import Principal
from edulink.jobs import JobContext, JobContract, JobRegistry, Queue, Retry
from internships.models import LEDGER

if TYPE_CHECKING:
    from internships.models import Application

log = logging.getLogger(__name__)

QUEUE = "internships"
IDEMPOTENCY_RECORD_LIFETIME = timedelta(hours=24)
REMINDER_LEAD_TIME = timedelta(hours=24)
# Pusher socket ids look like "123.456".
SOCKET_ID = re.compile(r"\d{1,20}\.\d{1,20}")


class Payload(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class NoArguments(Payload):
    pass


class Notification(Payload):
    """A message to one user, or to the staff of one organisation."""

    recipient_user_id: uuid.UUID | None = None
    recipient_org_id: uuid.UUID | None = None
    recipient_email: (
        Annotated[
            str,
            pydantic.StringConstraints(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$"),
        ]
        | None
    ) = None
    recipient_name: (
        Annotated[str, pydantic.StringConstraints(max_length=200)] | None
    ) = None
    kind: str
    title: str
    body: str
    entity_type: str
    entity_id: uuid.UUID
    refresh: (
        Annotated[
            list[
                Annotated[
                    list[Annotated[str, pydantic.StringConstraints(max_length=100)]],
                    pydantic.Field(min_length=1, max_length=8),
                ]
            ],
            pydantic.Field(max_length=20),
        ]
        | None
    ) = None
    socket_id: (
        Annotated[str, pydantic.StringConstraints(pattern=r"^\d{1,20}\.\d{1,20}$")]
        | None
    ) = None

    @pydantic.model_validator(mode="after")
    def _one_recipient(self) -> Notification:
        if (self.recipient_user_id is None) == (self.recipient_org_id is None):
            raise ValueError("set exactly one of recipient_user_id, recipient_org_id")
        return self


class TrustEvent(Payload):
    """A fact that raises a student's trust level."""

    student_id: uuid.UUID
    event: Literal["internship_completed", "internship_certified"]
    application_id: uuid.UUID


class CertificateRequest(Payload):
    """The facts the documents service needs to issue a completion certificate."""

    application_id: uuid.UUID
    student_id: uuid.UUID
    student_name: str
    institution_id: uuid.UUID | None
    opportunity_title: str
    employer_id: uuid.UUID
    employer_name: str
    start_date: date | None
    end_date: date | None


NOTIFY = JobContract(
    name="notifications.notify",
    version=1,
    payload=Notification,
    consumer="notifications",
)
TRUST_EVENT = JobContract(
    name="students.record_trust_event",
    version=1,
    payload=TrustEvent,
    consumer="students",
)
CERTIFICATE_REQUEST = JobContract(
    name="documents.request_certificate",
    version=1,
    payload=CertificateRequest,
    consumer="documents",
)
CLOSE_EXPIRED = JobContract(
    name="internships.close_expired_opportunities",
    version=1,
    payload=NoArguments,
    consumer=QUEUE,
    retry=Retry(max=1),
)
REMIND_DEADLINES = JobContract(
    name="internships.remind_deadlines",
    version=1,
    payload=NoArguments,
    consumer=QUEUE,
    retry=Retry(max=1),
)
PURGE_IDEMPOTENCY = JobContract(
    name="internships.purge_idempotency_records",
    version=1,
    payload=NoArguments,
    consumer=QUEUE,
    retry=Retry(max=1),
)


# Producing: the effects of one status change


def acting_socket_id() -> str | None:
    """Return the acting client's Pusher socket id, so its own tab is skipped."""
    if not has_request_context():
        return None
    value = request.headers.get("X-Socket-ID", "")
    return value if SOCKET_ID.fullmatch(value) else None


def _enqueue(session: Session, contract: JobContract, job_id: str, **payload) -> None:
    assert contract.consumer is not None
    Queue(contract.consumer, session=session).enqueue_call(
        contract, kwargs=payload, job_id=job_id
    )


def enqueue_status_change(
    session: Session,
    *,
    application: Application,
    previous: str | None,
    actor: Principal,
) -> None:
    """Enqueue the ledger event, notifications and follow-ups of one status change.

    Notification and follow-up job ids derive from the application's id and
    new version, so enqueueing the same change twice creates each of them once.
    """
    status = application.status
    prefix = f"application:{application.id}:v{application.version}"
    snapshot = application.student_snapshot
    opportunity = application.opportunity

    LEDGER.record_event(
        session,
        entity_type="application",
        entity_id=application.id,
        event_type="application.applied"
        if previous is None
        else "application.status_changed",
        actor=actor.subject,
        old={"status": previous} if previous else None,
        new={
            "status": status,
            "reason": application.reason,
            "opportunity_id": opportunity.id,
        },
    )
    _enqueue(
        session,
        NOTIFY,
        f"{prefix}:notify-student",
        recipient_user_id=application.student_user_id,
        recipient_email=snapshot.get("email"),
        recipient_name=snapshot.get("full_name"),
        kind="application_status_changed",
        title=f"Your application is {status.lower()}",
        body=f"Your application to {opportunity.title!r} is now {status}.",
        entity_type="application",
        entity_id=application.id,
        refresh=[["applications", str(application.id)], ["applications", "mine"]],
        socket_id=acting_socket_id(),
    )
    if status == "WITHDRAWN":
        _enqueue(
            session,
            NOTIFY,
            f"{prefix}:notify-employer",
            recipient_org_id=application.employer_id,
            kind="application_withdrawn",
            title="An application was withdrawn",
            body=f"{snapshot['full_name']} withdrew from {opportunity.title!r}: "
            f"{application.reason}",
            entity_type="application",
            entity_id=application.id,
            refresh=[["applications", str(application.id)], ["applications"]],
            socket_id=acting_socket_id(),
        )
    if status in ("COMPLETED", "CERTIFIED"):
        _enqueue(
            session,
            TRUST_EVENT,
            f"{prefix}:trust",
            student_id=application.student_id,
            event=f"internship_{status.lower()}",
            application_id=application.id,
        )
    if status == "CERTIFIED":
        _enqueue(
            session,
            CERTIFICATE_REQUEST,
            f"{prefix}:certificate",
            application_id=application.id,
            student_id=application.student_id,
            student_name=snapshot["full_name"],
            institution_id=application.institution_id,
            opportunity_title=opportunity.title,
            employer_id=application.employer_id,
            employer_name=opportunity.employer.name,
            start_date=application.start_date,
            end_date=application.end_date,
        )


# Consuming: this service's scheduled jobs

registry = JobRegistry(QUEUE)
LEDGER.register_jobs(registry)


@registry.handler(CLOSE_EXPIRED)
def close_expired_opportunities(_payload: NoArguments, context: JobContext) -> None:
    """Close every OPEN opportunity whose deadline has passed. Safe to rerun."""
    closed = close_expired(context.session, now=datetime.now(UTC))
    log.info("closed %d opportunities past their deadline", len(closed))


def close_expired(session: Session, *, now: datetime) -> list[uuid.UUID]:
    """Close OPEN opportunities past their deadline and record each in the ledger."""
    rows = session.execute(
        sa.text(
            """
            UPDATE internships.opportunities
            SET status = 'CLOSED', version = version + 1, updated_at = now()
            WHERE status = 'OPEN' AND deadline <= :now
            RETURNING id
            """
        ),
        {"now": now},
    ).all()
    for row in rows:
        LEDGER.record_event(
            session,
            entity_type="opportunity",
            entity_id=row.id,
            event_type="opportunity.closed_at_deadline",
            actor="system",
            old={"status": "OPEN"},
            new={"status": "CLOSED"},
        )
    return [row.id for row in rows]


@registry.handler(REMIND_DEADLINES)
def remind_deadlines(_payload: NoArguments, context: JobContext) -> None:
    """Remind employers of deadlines within 24 hours, once per deadline."""
    reminded = send_deadline_reminders(context.session, now=datetime.now(UTC))
    log.info("sent %d deadline reminders", len(reminded))


def send_deadline_reminders(session: Session, *, now: datetime) -> list[uuid.UUID]:
    """Notify the employer of each OPEN opportunity whose deadline is near.

    ``reminded_deadline`` remembers the deadline each reminder was for, so a
    rerun sends nothing new and a moved deadline gets a new reminder.
    """
    rows = session.execute(
        sa.text(
            """
            UPDATE internships.opportunities
            SET reminded_deadline = deadline
            WHERE status = 'OPEN'
              AND deadline > :now AND deadline <= :horizon
              AND reminded_deadline IS DISTINCT FROM deadline
            RETURNING id, employer_id, title, deadline
            """
        ),
        {"now": now, "horizon": now + REMINDER_LEAD_TIME},
    ).all()
    for row in rows:
        _enqueue(
            session,
            NOTIFY,
            f"opportunity:{row.id}:deadline:{row.deadline.isoformat()}:reminder",
            recipient_org_id=row.employer_id,
            kind="opportunity_deadline_near",
            title="Application deadline in less than 24 hours",
            body=f"Applications to {row.title!r} close at {row.deadline.isoformat()}.",
            entity_type="opportunity",
            entity_id=row.id,
        )
    return [row.id for row in rows]


@registry.handler(PURGE_IDEMPOTENCY)
def purge_idempotency_records(_payload: NoArguments, context: JobContext) -> None:
    """Forget stored responses older than a day; their keys can then be reused."""
    result = context.session.execute(
        sa.text(
            "DELETE FROM internships.idempotency_records WHERE created_at < :cutoff"
        ),
        {"cutoff": datetime.now(UTC) - IDEMPOTENCY_RECORD_LIFETIME},
    )
    log.info("purged %d idempotency records", result.rowcount)


registry.schedule("*/5 * * * *", CLOSE_EXPIRED)
registry.schedule("*/15 * * * *", REMIND_DEADLINES)
registry.schedule("17 3 * * *", PURGE_IDEMPOTENCY)
