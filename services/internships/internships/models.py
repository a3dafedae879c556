"""Tables of the ``internships`` schema."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column, relationship

from edulink.db import TimestampedMixin, declarative_base_for
from edulink.ledger import Ledger

SCHEMA = "internships"
Base = declarative_base_for(SCHEMA)

# The service's event log, ``internships.ledger_entries``, appended by its worker.
LEDGER = Ledger(Base.metadata, queue=SCHEMA)


class EmployerStatus(enum.StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    ACTIVE = "active"
    REJECTED = "rejected"


class LocationType(enum.StrEnum):
    ONSITE = "onsite"
    REMOTE = "remote"
    HYBRID = "hybrid"


class OpportunityStatus(enum.StrEnum):
    DRAFT = "DRAFT"
    OPEN = "OPEN"
    CLOSED = "CLOSED"


class ApplicationStatus(enum.StrEnum):
    APPLIED = "APPLIED"
    SHORTLISTED = "SHORTLISTED"
    ACCEPTED = "ACCEPTED"
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    CERTIFIED = "CERTIFIED"
    REJECTED = "REJECTED"
    WITHDRAWN = "WITHDRAWN"
    TERMINATED = "TERMINATED"


# Applications that take one of an opportunity's places.
PLACE_TAKING_STATUSES = (
    ApplicationStatus.ACCEPTED,
    ApplicationStatus.ACTIVE,
    ApplicationStatus.COMPLETED,
    ApplicationStatus.CERTIFIED,
)
# A student has at most one placement in these states at a time.
CURRENT_PLACEMENT_STATUSES = (ApplicationStatus.ACCEPTED, ApplicationStatus.ACTIVE)
# Applications listed as the placements of an institution's students.
PLACEMENT_STATUSES = (*PLACE_TAKING_STATUSES, ApplicationStatus.TERMINATED)


def _check_in(column: str, values: type[enum.StrEnum]) -> str:
    allowed = ", ".join(f"'{member.value}'" for member in values)
    return f"{column} IN ({allowed})"


def _quoted(statuses: tuple[enum.StrEnum, ...]) -> str:
    return ", ".join(f"'{status.value}'" for status in statuses)


class Employer(TimestampedMixin, Base):
    __tablename__ = "employers"
    __table_args__ = (
        sa.CheckConstraint(_check_in("status", EmployerStatus), name="status"),
    )

    name: Mapped[str] = mapped_column(sa.Text)
    contact_email: Mapped[str] = mapped_column(sa.Text)
    contact_phone: Mapped[str | None] = mapped_column(sa.Text)
    website: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.Text, default=EmployerStatus.REQUESTED.value)


sa.Index("uq_employers_lower_name", sa.func.lower(Employer.name), unique=True)

# Title, description and location, weighted in that order, for full-text search.
SEARCH_DOCUMENT = (
    "setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'B') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(location, '')), 'C')"
)


class Opportunity(TimestampedMixin, Base):
    __tablename__ = "opportunities"
    __table_args__ = (
        sa.CheckConstraint(_check_in("status", OpportunityStatus), name="status"),
        sa.CheckConstraint(
            _check_in("location_type", LocationType), name="location_type"
        ),
        sa.CheckConstraint("capacity > 0", name="capacity_positive"),
        sa.CheckConstraint("end_date >= start_date", name="dates_ordered"),
        sa.CheckConstraint(
            "(stipend_amount IS NULL) = (stipend_currency IS NULL)",
            name="stipend_complete",
        ),
        sa.Index(
            "ix_opportunities_employer_created", "employer_id", "created_at", "id"
        ),
        # Public search pages through OPEN opportunities by deadline.
        sa.Index(
            "ix_opportunities_open_deadline",
            "deadline",
            "id",
            postgresql_where=sa.text("status = 'OPEN'"),
        ),
        sa.Index("ix_opportunities_search", "search", postgresql_using="gin"),
        sa.Index("ix_opportunities_skills", "skills", postgresql_using="gin"),
    )

    employer_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("employers.id", ondelete="RESTRICT")
    )
    title: Mapped[str] = mapped_column(sa.Text)
    description: Mapped[str] = mapped_column(sa.Text)
    skills: Mapped[list[str]] = mapped_column(
        ARRAY(sa.Text), default=list, server_default="{}"
    )
    location: Mapped[str] = mapped_column(sa.Text)
    location_type: Mapped[str] = mapped_column(sa.Text)
    capacity: Mapped[int] = mapped_column()
    stipend_amount: Mapped[Decimal | None] = mapped_column(sa.Numeric(12, 2))
    stipend_currency: Mapped[str | None] = mapped_column(sa.String(3))
    start_date: Mapped[date] = mapped_column(sa.Date)
    end_date: Mapped[date] = mapped_column(sa.Date)
    deadline: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    institution_id: Mapped[uuid.UUID | None] = mapped_column()
    status: Mapped[str] = mapped_column(sa.Text, default=OpportunityStatus.DRAFT.value)
    # The deadline a reminder was sent for, so each deadline gets one reminder.
    reminded_deadline: Mapped[datetime | None] = mapped_column(
        sa.DateTime(timezone=True)
    )
    search: Mapped[Any] = mapped_column(
        TSVECTOR, sa.Computed(SEARCH_DOCUMENT, persisted=True), deferred=True
    )

    # Loaded explicitly (joins or the identity map), never by a hidden query.
    employer: Mapped[Employer] = relationship(lazy="raise_on_sql")

    @property
    def stipend(self) -> dict[str, Any] | None:
        """The stipend as ``{"amount", "currency"}``, or None when unpaid."""
        if self.stipend_amount is None:
            return None
        return {"amount": self.stipend_amount, "currency": self.stipend_currency}


class Application(TimestampedMixin, Base):
    """A student's application to an opportunity, and the placement once accepted.

    ``employer_id``, ``student_user_id`` and ``institution_id`` copy facts of
    the opportunity and the snapshot, so visibility and lists need no join.
    """

    __tablename__ = "applications"
    __table_args__ = (
        sa.CheckConstraint(_check_in("status", ApplicationStatus), name="status"),
        sa.CheckConstraint(
            "end_date IS NULL OR start_date IS NULL OR end_date >= start_date",
            name="dates_ordered",
        ),
        # Applying again is possible only after withdrawing.
        sa.Index(
            "uq_applications_live_student_opportunity",
            "opportunity_id",
            "student_id",
            unique=True,
            postgresql_where=sa.text("status <> 'WITHDRAWN'"),
        ),
        sa.Index(
            "uq_applications_current_placement",
            "student_id",
            unique=True,
            postgresql_where=sa.text(
                f"status IN ({_quoted(CURRENT_PLACEMENT_STATUSES)})"
            ),
        ),
        sa.Index("ix_applications_employer_created", "employer_id", "created_at", "id"),
        sa.Index(
            "ix_applications_student_created", "student_user_id", "created_at", "id"
        ),
        sa.Index(
            "ix_applications_institution_placements",
            "institution_id",
            "created_at",
            "id",
            postgresql_where=sa.text(f"status IN ({_quoted(PLACEMENT_STATUSES)})"),
        ),
        sa.Index("ix_applications_opportunity_status", "opportunity_id", "status"),
    )

    opportunity_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("opportunities.id", ondelete="RESTRICT")
    )
    employer_id: Mapped[uuid.UUID] = mapped_column()
    student_id: Mapped[uuid.UUID] = mapped_column()
    student_user_id: Mapped[uuid.UUID] = mapped_column()
    institution_id: Mapped[uuid.UUID | None] = mapped_column()
    student_snapshot: Mapped[dict[str, Any]] = mapped_column(JSONB)
    cover_letter: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(
        sa.Text, default=ApplicationStatus.APPLIED.value
    )
    start_date: Mapped[date | None] = mapped_column(sa.Date)
    end_date: Mapped[date | None] = mapped_column(sa.Date)
    supervisor_user_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    status_changed_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )

    opportunity: Mapped[Opportunity] = relationship(lazy="raise_on_sql")


class IdempotencyRecord(Base):
    """The first response to a POST that carried an ``Idempotency-Key``."""

    __tablename__ = "idempotency_records"

    subject: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    key: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    request_hash: Mapped[str] = mapped_column(sa.Text)
    status_code: Mapped[int] = mapped_column(sa.SmallInteger)
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    location: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), index=True
    )
