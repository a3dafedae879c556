"""Tables of the ``documents`` schema."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, deferred, mapped_column

from edulink.db import TimestampedMixin, declarative_base_for
from edulink.ledger import Ledger

SCHEMA = "documents"
Base = declarative_base_for(SCHEMA)

# The service's event log, ``documents.ledger_entries``: issues and revocations.
LEDGER = Ledger(Base.metadata, queue=SCHEMA)


class DocumentKind(enum.StrEnum):
    PLACEMENT_LETTER = "placement_letter"
    COMPLETION_CERTIFICATE = "completion_certificate"
    PERFORMANCE_SUMMARY = "performance_summary"
    PLACEMENT_REPORT = "placement_report"


class DocumentStatus(enum.StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    READY = "READY"
    FAILED = "FAILED"


class DocumentFormat(enum.StrEnum):
    PDF = "pdf"
    CSV = "csv"


# Kinds about one placement, whose subject is an application.
PLACEMENT_KINDS = frozenset(
    {
        DocumentKind.PLACEMENT_LETTER,
        DocumentKind.COMPLETION_CERTIFICATE,
        DocumentKind.PERFORMANCE_SUMMARY,
    }
)


def _check_in(column: str, values: type[enum.StrEnum]) -> str:
    allowed = ", ".join(f"'{member.value}'" for member in values)
    return f"{column} IN ({allowed})"


class Document(TimestampedMixin, Base):
    """One requested document: its subject, source snapshot, state and bytes.

    ``student_user_id``, ``employer_id`` and ``institution_id`` copy the
    parties of the subject when it was requested, so visibility needs no call
    to another service. ``content`` is deferred: only the download and the
    render load it.
    """

    __tablename__ = "documents"
    __table_args__ = (
        sa.CheckConstraint(_check_in("kind", DocumentKind), name="kind"),
        sa.CheckConstraint(_check_in("status", DocumentStatus), name="status"),
        sa.CheckConstraint(_check_in("format", DocumentFormat), name="format"),
        sa.CheckConstraint(
            "(status = 'READY') = (content IS NOT NULL AND content_sha256 IS NOT NULL)",
            name="ready_has_content",
        ),
        sa.CheckConstraint(
            "(status = 'FAILED') = (failure_reason IS NOT NULL)",
            name="failed_has_reason",
        ),
        sa.CheckConstraint(
            "revoked_at IS NULL OR status = 'READY'", name="only_ready_revoked"
        ),
        # One live document per subject and source data: a repeated request
        # with unchanged data finds it instead of rendering again.
        sa.Index(
            "uq_documents_live_subject_source",
            "subject_key",
            "source_hash",
            unique=True,
            postgresql_where=sa.text("status <> 'FAILED' AND revoked_at IS NULL"),
        ),
        sa.Index("ix_documents_created_at_id", "created_at", "id"),
        sa.Index("ix_documents_content_sha256", "content_sha256"),
        sa.Index("ix_documents_application_id", "application_id"),
    )

    kind: Mapped[str] = mapped_column(sa.Text)
    format: Mapped[str] = mapped_column(sa.Text, default=DocumentFormat.PDF.value)
    status: Mapped[str] = mapped_column(sa.Text, default=DocumentStatus.PENDING.value)
    failure_reason: Mapped[str | None] = mapped_column(sa.Text)
    tracking_code: Mapped[str] = mapped_column(sa.Text, unique=True)
    title: Mapped[str] = mapped_column(sa.Text)
    holder_name: Mapped[str] = mapped_column(sa.Text)

    # The subject: an application, or an institution and a period.
    subject_key: Mapped[str] = mapped_column(sa.Text)
    application_id: Mapped[uuid.UUID | None] = mapped_column()
    student_user_id: Mapped[uuid.UUID | None] = mapped_column()
    employer_id: Mapped[uuid.UUID | None] = mapped_column()
    institution_id: Mapped[uuid.UUID | None] = mapped_column()
    period_start: Mapped[date | None] = mapped_column(sa.Date)
    period_end: Mapped[date | None] = mapped_column(sa.Date)

    source: Mapped[dict[str, Any]] = mapped_column(JSONB)
    source_hash: Mapped[str] = mapped_column(sa.String(64))
    requested_by: Mapped[str] = mapped_column(sa.Text)
    notify_user_id: Mapped[uuid.UUID | None] = mapped_column()

    content: Mapped[bytes | None] = deferred(mapped_column(sa.LargeBinary))
    content_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    content_size: Mapped[int | None] = mapped_column()
    media_type: Mapped[str] = mapped_column(sa.Text)
    filename: Mapped[str] = mapped_column(sa.Text)
    render_ms: Mapped[int | None] = mapped_column()
    issued_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    revoked_by: Mapped[str | None] = mapped_column(sa.Text)
    revocation_reason: Mapped[str | None] = mapped_column(sa.Text)
