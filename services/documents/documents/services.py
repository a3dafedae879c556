"""Business rules of the documents service: who may request and read what, and when.

Functions take an explicit session and raise domain errors from
``edulink.errors``; callers commit. A document or subject the actor may not
see raises NotFound, never Forbidden, so ids cannot be probed.

Who may request and read a document: the student it names, admins of the
placement's employer, admins of the student's institution, and system
admins. Institution reports are for that institution's admins and system
admins only.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, undefer

from documents import codes, contracts, rendering
from documents.models import (
    LEDGER,
    PLACEMENT_KINDS,
    Document,
    DocumentFormat,
    DocumentKind,
    DocumentStatus,
)
from documents.snapshots import (
    ISSUABLE_STATUSES,
    NEEDS_OPPORTUNITY,
    NEEDS_TIMELINE,
    TITLES,
    placement_snapshot,
    report_snapshot,
)
from documents.sources import PlacementFacts, Sources, snapshot_hash
from edulink.auth import Principal, Role
from edulink.errors import Conflict, NotFound, UnprocessableContent
from edulink.ledger import LedgerAppend
from edulink.logs import request_id_var
from edulink.pagination import CursorCodec, Page, keyset_page, scope_of

log = logging.getLogger(__name__)

MAX_CERTIFICATES_PER_APPLICATION = 2
MAX_REPORT_DAYS = 366 * 5
TRACKING_CODE_ATTEMPTS = 5


@dataclass(frozen=True)
class DocumentRequest:
    """A caller's request: a kind, a format and the subject's ids."""

    kind: DocumentKind
    format: DocumentFormat = DocumentFormat.PDF
    application_id: uuid.UUID | None = None
    institution_id: uuid.UUID | None = None
    period_start: date | None = None
    period_end: date | None = None


@dataclass(frozen=True)
class Subject:
    """A document's subject: its key, its parties, and the data it prints."""

    key: str
    holder_name: str
    snapshot: dict[str, Any]
    application_id: uuid.UUID | None = None
    student_user_id: uuid.UUID | None = None
    employer_id: uuid.UUID | None = None
    institution_id: uuid.UUID | None = None
    period_start: date | None = None
    period_end: date | None = None


# Visibility


def document_visibility(actor: Principal) -> sa.ColumnElement[bool]:
    """SQL condition for the documents ``actor`` may see."""
    if actor.role == Role.system_admin:
        return sa.true()
    if actor.role == Role.student and actor.user_id is not None:
        return Document.student_user_id == actor.user_id
    if actor.role == Role.employer_admin and actor.org_ids:
        return Document.employer_id.in_(actor.org_ids)
    if actor.role == Role.institution_admin and actor.org_ids:
        return Document.institution_id.in_(actor.org_ids)
    return sa.false()


def visible_document_ids(actor: Principal) -> sa.Select[tuple[uuid.UUID]]:
    return sa.select(Document.id).where(document_visibility(actor))


def _is_party(actor: Principal, facts: PlacementFacts) -> bool:
    if actor.role == Role.system_admin:
        return True
    if actor.role == Role.student:
        return actor.user_id == facts.student_user_id
    if actor.role == Role.employer_admin:
        return facts.employer_id in actor.org_ids
    if actor.role == Role.institution_admin:
        return facts.institution_id in actor.org_ids
    return False


def get_document(
    session: Session, *, actor: Principal, document_id: uuid.UUID, content: bool = False
) -> Document:
    statement = sa.select(Document).where(
        Document.id == document_id, document_visibility(actor)
    )
    if content:
        statement = statement.options(undefer(Document.content))
    document = session.scalar(statement)
    if document is None:
        raise NotFound(f"Document {document_id} does not exist.")
    return document


def list_documents(
    session: Session,
    *,
    actor: Principal,
    codec: CursorCodec,
    limit: int,
    cursor: str | None,
    kind: str | None = None,
    application_id: uuid.UUID | None = None,
) -> Page[Document]:
    """List the documents ``actor`` may see, newest first."""
    statement = sa.select(Document).where(document_visibility(actor))
    if kind:
        statement = statement.where(Document.kind == kind)
    if application_id:
        statement = statement.where(Document.application_id == application_id)
    return keyset_page(
        session,
        statement,
        order_by=(Document.created_at, Document.id),
        codec=codec,
        scope=scope_of(
            "documents", actor=actor.subject, kind=kind, application=application_id
        ),
        limit=limit,
        cursor=cursor,
        descending=True,
    )


# Requesting


def request_document(
    session: Session,
    *,
    actor: Principal,
    request: DocumentRequest,
    sources: Sources,
    actor_token: str,
) -> tuple[Document, bool]:
    """Find or create the requested document; True when created.

    Reads the subject's data from the other services first, so an unknown
    subject or one the actor may not see is a NotFound before anything is
    stored.
    """
    if request.kind in PLACEMENT_KINDS:
        assert request.application_id is not None
        facts = _placement_facts(sources, request.kind, request.application_id)
        if not _is_party(actor, facts):
            raise NotFound(f"Application {request.application_id} does not exist.")
        check_issuable(request.kind, facts.status)
        subject = placement_subject(request.kind, facts)
    else:
        subject = _report_subject(actor, request, sources, actor_token)

    return issue(
        session,
        kind=request.kind,
        format=request.format,
        subject=subject,
        requested_by=actor.subject,
        notify_user_id=actor.user_id,
    )


def request_certificate_for_job(
    session: Session, *, application_id: uuid.UUID, sources: Sources, requested_by: str
) -> Document | None:
    """Issue the certificate that the internships service requests on CERTIFIED.

    Returns None, logging why, when the application is not certified or has
    its two certificates already, because running the job again cannot help.
    """
    kind = DocumentKind.COMPLETION_CERTIFICATE
    facts = _placement_facts(sources, kind, application_id)
    if facts.status not in ISSUABLE_STATUSES[kind]:
        log.warning(
            "no certificate for application %s, whose status is %s",
            application_id,
            facts.status,
        )
        return None
    try:
        document, _created = issue(
            session,
            kind=kind,
            format=DocumentFormat.PDF,
            subject=placement_subject(kind, facts),
            requested_by=requested_by,
            notify_user_id=facts.student_user_id,
        )
    except Conflict as error:
        log.warning("no certificate for application %s: %s", application_id, error)
        return None
    return document


def _placement_facts(
    sources: Sources, kind: DocumentKind, application_id: uuid.UUID
) -> PlacementFacts:
    return sources.placement(
        application_id,
        opportunity=kind in NEEDS_OPPORTUNITY,
        timeline=kind in NEEDS_TIMELINE,
    )


def check_issuable(kind: DocumentKind, status: str) -> None:
    """Raise Conflict unless a ``kind`` document fits an application in ``status``."""
    allowed = ISSUABLE_STATUSES[kind]
    if status not in allowed:
        raise Conflict(
            f"A {kind.value.replace('_', ' ')} needs an application in status "
            f"{' or '.join(allowed)}; this one is {status}.",
            status_now=status,
            allowed_statuses=list(allowed),
        )


def placement_subject(kind: DocumentKind, facts: PlacementFacts) -> Subject:
    snapshot = placement_snapshot(kind, facts)
    return Subject(
        key=f"application:{facts.application_id}",
        holder_name=snapshot["student"]["full_name"],
        snapshot=snapshot,
        application_id=facts.application_id,
        student_user_id=facts.student_user_id,
        employer_id=facts.employer_id,
        institution_id=facts.institution_id,
    )


def _report_subject(
    actor: Principal, request: DocumentRequest, sources: Sources, actor_token: str
) -> Subject:
    institution_id = request.institution_id
    start, end = request.period_start, request.period_end
    assert institution_id is not None
    assert start is not None
    assert end is not None
    admin = actor.role == Role.institution_admin and institution_id in actor.org_ids
    if not (actor.role == Role.system_admin or admin):
        raise NotFound(f"Institution {institution_id} does not exist.")
    if (end - start).days > MAX_REPORT_DAYS:
        raise UnprocessableContent(
            f"A report covers at most {MAX_REPORT_DAYS} days. "
            "Ask for a shorter period.",
            errors=[
                {
                    "location": "json",
                    "field": "period_end",
                    "detail": "Period too long.",
                }
            ],
        )
    facts = sources.report(institution_id, start, end, requester_token=actor_token)
    snapshot = report_snapshot(facts)
    return Subject(
        key=f"institution:{institution_id}:{start}:{end}:{request.format}",
        holder_name=snapshot["institution"]["name"],
        snapshot=snapshot,
        institution_id=institution_id,
        period_start=start,
        period_end=end,
    )


def issue(
    session: Session,
    *,
    kind: DocumentKind,
    format: DocumentFormat,
    subject: Subject,
    requested_by: str,
    notify_user_id: uuid.UUID | None,
) -> tuple[Document, bool]:
    """Return the live document of this subject and data, or create one.

    A transaction-scoped advisory lock on the subject makes concurrent
    requests for it take turns, so two of them never both create a document
    or both take a subject's last certificate.
    """
    source_hash = snapshot_hash(subject.snapshot)
    kind_key = f"{kind.value}:{subject.key}"
    session.execute(
        sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(kind_key, 0)))
    )
    existing = session.scalar(
        sa.select(Document).where(
            Document.subject_key == kind_key,
            Document.source_hash == source_hash,
            Document.status != DocumentStatus.FAILED.value,
            Document.revoked_at.is_(None),
        )
    )
    if existing is not None:
        return existing, False

    if kind == DocumentKind.COMPLETION_CERTIFICATE:
        _check_certificate_limit(session, kind_key)

    document = Document(
        kind=kind.value,
        format=format.value,
        status=DocumentStatus.PENDING.value,
        title=TITLES[kind],
        holder_name=subject.holder_name,
        subject_key=kind_key,
        application_id=subject.application_id,
        student_user_id=subject.student_user_id,
        employer_id=subject.employer_id,
        institution_id=subject.institution_id,
        period_start=subject.period_start,
        period_end=subject.period_end,
        source=subject.snapshot,
        source_hash=source_hash,
        requested_by=requested_by,
        notify_user_id=notify_user_id,
        media_type=rendering.MEDIA_TYPES[format],
        filename="",
    )
    _insert_with_new_code(session, document, kind)
    contracts.enqueue_render(session, document.id)
    log.info(
        "document requested",
        extra={"document_id": str(document.id), "kind": kind.value},
    )
    return document, True


def _check_certificate_limit(session: Session, kind_key: str) -> None:
    issued = session.scalar(
        sa.select(sa.func.count()).where(
            Document.subject_key == kind_key,
            Document.status != DocumentStatus.FAILED.value,
        )
    )
    if issued >= MAX_CERTIFICATES_PER_APPLICATION:
        raise Conflict(
            f"This application has {issued} certificates already, the most "
            f"allowed is {MAX_CERTIFICATES_PER_APPLICATION}. A system admin can "
            "revoke one, but revoked certificates still count.",
            issued=issued,
        )


def _insert_with_new_code(
    session: Session, document: Document, kind: DocumentKind
) -> None:
    """Insert ``document`` with a fresh tracking code, drawing again on a collision."""
    for _attempt in range(TRACKING_CODE_ATTEMPTS):
        document.tracking_code = codes.new_tracking_code(kind)
        document.filename = download_filename(kind, document)
        try:
            with session.begin_nested():
                session.add(document)
                session.flush()
            return
        except IntegrityError as error:
            if "tracking_code" not in str(error.orig):
                raise
            log.warning(
                "tracking code %s was taken, drawing again", document.tracking_code
            )
    raise RuntimeError(f"no free tracking code after {TRACKING_CODE_ATTEMPTS} draws")


def download_filename(kind: DocumentKind, document: Document) -> str:
    extension = "csv" if document.format == DocumentFormat.CSV else "pdf"
    return (
        f"edulink-{kind.value.replace('_', '-')}-{document.tracking_code}.{extension}"
    )


# Rendering


def start_processing(session: Session, *, document_id: uuid.UUID) -> Document | None:
    """Mark a PENDING document PROCESSING and return it; None if it is done or gone.

    A PROCESSING document is returned too: its earlier render was cut short.
    """
    document = session.scalar(
        sa.select(Document).where(Document.id == document_id).with_for_update()
    )
    if document is None:
        log.warning("document %s to render does not exist", document_id)
        return None
    if document.status not in (DocumentStatus.PENDING, DocumentStatus.PROCESSING):
        log.info("document %s is %s already", document_id, document.status)
        return None
    document.status = DocumentStatus.PROCESSING.value
    session.flush()
    return document


def complete(
    session: Session,
    *,
    document_id: uuid.UUID,
    content: bytes,
    issued_at: datetime,
    render_ms: int,
) -> Document:
    """Store the rendered bytes, mark the document READY and record the issue."""
    document = _locked(session, document_id)
    document.status = DocumentStatus.READY.value
    document.content = content
    document.content_sha256 = rendering.sha256_hex(content)
    document.content_size = len(content)
    document.issued_at = issued_at
    document.render_ms = render_ms
    session.flush()

    # The render already runs in a job and the document's chain is new, so
    # the event is appended here instead of in a ledger.append job of its own.
    LEDGER.append(
        session,
        LedgerAppend(
            event_id=uuid.uuid4(),
            entity_type="document",
            entity_id=str(document.id),
            event_type="document.issued",
            actor=document.requested_by,
            new={
                "kind": document.kind,
                "tracking_code": document.tracking_code,
                "sha256": document.content_sha256,
                "size": document.content_size,
                "source_hash": document.source_hash,
            },
            occurred_at=issued_at,
            request_id=request_id_var.get(),
        ),
    )
    if document.notify_user_id is not None:
        contracts.enqueue_ready_notification(session, document)

    log.info(
        "document ready",
        extra={"document_id": str(document.id), "render_ms": render_ms},
    )
    return document


def fail(session: Session, *, document_id: uuid.UUID, reason: str) -> Document:
    document = _locked(session, document_id)
    document.status = DocumentStatus.FAILED.value
    document.failure_reason = reason
    session.flush()
    log.warning("document failed: %s", reason, extra={"document_id": str(document_id)})
    return document


def _locked(session: Session, document_id: uuid.UUID) -> Document:
    document = session.scalar(
        sa.select(Document).where(Document.id == document_id).with_for_update()
    )
    if document is None:
        raise NotFound(f"Document {document_id} does not exist.")
    return document


def produce(
    document: Document,
    *,
    renderer: rendering.PdfRenderer,
    fonts: rendering.Fonts,
    public_base_url: str,
    issued_at: datetime,
) -> bytes:
    """Render the document's bytes from its stored snapshot."""
    if document.format == DocumentFormat.CSV:
        return rendering.report_csv(document.source)
    kind = DocumentKind(document.kind)
    imprint = rendering.Imprint(
        tracking_code=document.tracking_code,
        issued_on=issued_at.astimezone(UTC).date(),
        verification_url=rendering.verification_url(
            public_base_url, document.tracking_code
        ),
    )
    html = rendering.document_html(
        kind, document.source, title=document.title, imprint=imprint, fonts=fonts
    )
    return renderer.render(html, pdf_variant=rendering.PDF_VARIANTS.get(kind))


# Revocation and verification


def revoke(
    session: Session, *, actor: Principal, document_id: uuid.UUID, reason: str
) -> Document:
    """Revoke a READY document (system admins); verification then shows it revoked."""
    document = get_document(session, actor=actor, document_id=document_id)
    session.refresh(document, with_for_update=True)
    if document.revoked_at is not None:
        raise Conflict(
            "This document is revoked already.",
            revoked_at=document.revoked_at.isoformat(),
        )
    if document.status != DocumentStatus.READY:
        raise Conflict(
            f"Only READY documents can be revoked; this one is {document.status}.",
            status_now=document.status,
        )
    document.revoked_at = datetime.now(UTC)
    document.revoked_by = actor.subject
    document.revocation_reason = reason
    session.flush()
    LEDGER.record_event(
        session,
        entity_type="document",
        entity_id=document.id,
        event_type="document.revoked",
        actor=actor.subject,
        old={"revoked": False},
        new={"revoked": True, "reason": reason},
    )
    log.info("document revoked", extra={"document_id": str(document.id)})
    return document


def find_by_code(session: Session, *, code: str) -> Document:
    """Return the issued document with tracking code ``code``, or raise NotFound."""
    normalized = codes.normalize_code(code)
    document = None
    if normalized is not None:
        document = session.scalar(
            sa.select(Document).where(
                Document.tracking_code == normalized,
                Document.status == DocumentStatus.READY.value,
            )
        )
    if document is None:
        raise NotFound(
            "No issued document has this tracking code. Check the code on the "
            "document, such as EDL-C-7KQ2ZD."
        )
    return document


def find_by_content(session: Session, *, content: bytes) -> Document | None:
    """Return the issued document whose bytes are exactly ``content``, if any."""
    digest = rendering.sha256_hex(content)
    return session.scalar(
        sa.select(Document).where(
            Document.content_sha256 == digest,
            Document.content_size == len(content),
            Document.status == DocumentStatus.READY.value,
        )
    )
