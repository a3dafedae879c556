"""Job contracts this service produces and consumes, and its job handlers.

- ``ledger.append`` (students, through :data:`students.models.LEDGER`): every
  change to an institution, a profile, a claim or a trust level.
- ``notifications.notify`` (notifications): an affiliation claim decided.
- ``students.record_trust_event`` (students, produced by internships): a
  placement completed or certified raises the student's trust level.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Literal

import pydantic
from sqlalchemy.orm import Session

from edulink.jobs import JobContext, JobContract, JobRegistry, Queue
from students.models import (
    LEDGER,
    SCHEMA,
    TRUST_CERTIFIED,
    TRUST_INTERNSHIP_COMPLETED,
    AffiliationClaim,
    Student,
)

log = logging.getLogger(__name__)

QUEUE = SCHEMA


class Payload(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class TrustEvent(Payload):
    """A fact from another service that raises a student's trust level."""

    student_id: uuid.UUID
    event: Literal["internship_completed", "internship_certified"]
    application_id: uuid.UUID


class Notification(Payload):
    """The part of the notifications service's ``notify`` payload this service sends."""

    recipient_user_id: uuid.UUID
    recipient_email: Annotated[str, pydantic.StringConstraints(max_length=320)]
    recipient_name: Annotated[str, pydantic.StringConstraints(max_length=200)]
    kind: str
    title: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=200)]
    body: str
    entity_type: str
    entity_id: uuid.UUID
    refresh: list[list[str]]


TRUST_EVENT = JobContract(
    name="students.record_trust_event",
    version=1,
    payload=TrustEvent,
    consumer=QUEUE,
)
NOTIFY = JobContract(
    name="notifications.notify",
    version=1,
    payload=Notification,
    consumer="notifications",
)

TRUST_LEVEL_OF_EVENT = {
    "internship_completed": TRUST_INTERNSHIP_COMPLETED,
    "internship_certified": TRUST_CERTIFIED,
}


def enqueue_claim_decided(
    session: Session, *, claim: AffiliationClaim, student: Student
) -> None:
    """Tell the student that their claim was approved or rejected."""
    if claim.status == "approved":
        title = "Your institution confirmed your affiliation"
        body = "You are now a verified student of your institution."
    else:
        title = "Your affiliation claim was rejected"
        body = f"Reason given: {claim.reason}"
    Queue(NOTIFY.consumer, session=session).enqueue_call(
        NOTIFY,
        kwargs={
            "recipient_user_id": student.user_id,
            "recipient_email": student.email,
            "recipient_name": student.full_name,
            "kind": "affiliation_decided",
            "title": title,
            "body": body,
            "entity_type": "affiliation_claim",
            "entity_id": claim.id,
            "refresh": [["students", "me"], ["students", "me", "claims"]],
        },
        job_id=f"affiliation_claim:{claim.id}:{claim.status}:notify",
    )


registry = JobRegistry(QUEUE)
LEDGER.register_jobs(registry)


@registry.handler(TRUST_EVENT)
def record_trust_event(payload: TrustEvent, context: JobContext) -> None:
    """Raise the student's trust level. Levels never fall, so reruns change nothing."""
    session = context.session
    student = session.get(Student, payload.student_id, with_for_update=True)
    if student is None:
        log.warning(
            "trust event for unknown student %s ignored (application %s)",
            payload.student_id,
            payload.application_id,
        )
        return
    level = TRUST_LEVEL_OF_EVENT[payload.event]
    if student.trust_level >= level:
        return
    previous = student.trust_level
    student.trust_level = level
    LEDGER.record_event(
        session,
        entity_type="student",
        entity_id=student.id,
        event_type="student.trust_raised",
        actor=f"service:{payload.event}",
        old={"trust_level": previous},
        new={
            "trust_level": level,
            "event": payload.event,
            "application_id": str(payload.application_id),
        },
    )
    log.info(
        "trust level of student %s raised from %d to %d",
        student.id,
        previous,
        level,
    )
