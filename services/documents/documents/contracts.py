"""Job contracts this service consumes and produces, and helpers that enqueue them.

- ``documents.render_document`` (documents): render one PENDING document.
- ``documents.request_certificate`` (documents): produced by the internships
  service when an application becomes CERTIFIED.
- ``notifications.notify`` (notifications): a document is READY.
- ``ledger.append`` (documents, through :data:`documents.models.LEDGER`):
  each issue and revocation.
"""

from __future__ import annotations

import uuid
from datetime import date

import pydantic
from sqlalchemy.orm import Session

from documents.models import SCHEMA, Document
from edulink.jobs import JobContract, Queue, Retry

QUEUE = SCHEMA


class RenderDocument(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    document_id: uuid.UUID


class CertificateRequest(pydantic.BaseModel):
    """The internships service's request for a completion certificate.

    Only ``application_id`` is used: the certificate prints what the
    services' APIs return when the job runs. The other fields are the
    producer's and are accepted as they come.
    """

    model_config = pydantic.ConfigDict(extra="ignore", frozen=True)

    application_id: uuid.UUID
    student_id: uuid.UUID | None = None
    student_name: str | None = None
    institution_id: uuid.UUID | None = None
    opportunity_title: str | None = None
    employer_id: uuid.UUID | None = None
    employer_name: str | None = None
    start_date: date | None = None
    end_date: date | None = None


class Notify(pydantic.BaseModel):
    """This service's copy of the notifications service's ``Notify`` payload."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    recipient_user_id: uuid.UUID
    kind: str
    title: str = pydantic.Field(min_length=1, max_length=200)
    body: str = pydantic.Field(max_length=10_000)
    entity_type: str
    entity_id: uuid.UUID


# A render that fails for its document's sake marks it FAILED and ends the
# job; retries are for database and process errors.
RENDER_DOCUMENT = JobContract(
    name="documents.render_document",
    version=1,
    payload=RenderDocument,
    consumer=QUEUE,
    retry=Retry(max=3),
)
# Retries cover the internships or students service being down for a while.
CERTIFICATE_REQUEST = JobContract(
    name="documents.request_certificate",
    version=1,
    payload=CertificateRequest,
    consumer=QUEUE,
    retry=Retry(max=10),
)
NOTIFY = JobContract(
    name="notifications.notify",
    version=1,
    payload=Notify,
    consumer="notifications",
    retry=Retry(max=5),
)


# Renders run before waiting certificate requests, so under a backlog the
# worker finishes documents it has started, and reads the next document's
# data while another renders.
RENDER_PRIORITY = 10


def enqueue_render(session: Session, document_id: uuid.UUID) -> None:
    Queue(QUEUE, session=session).enqueue_call(
        RENDER_DOCUMENT,
        kwargs={"document_id": document_id},
        job_id=f"document:{document_id}:render",
        priority=RENDER_PRIORITY,
    )


def enqueue_ready_notification(session: Session, document: Document) -> None:
    """Tell the requester, in their inbox, that their document can be downloaded."""
    Queue("notifications", session=session).enqueue_call(
        NOTIFY,
        kwargs={
            "recipient_user_id": document.notify_user_id,
            "kind": "document_ready",
            "title": f"Your {document.title.lower()} is ready",
            "body": f"{document.title} {document.tracking_code} for "
            f"{document.holder_name} is ready to download.",
            "entity_type": "document",
            "entity_id": document.id,
        },
        job_id=f"document:{document.id}:ready",
    )
