"""Tables of the ``students`` schema."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from edulink.db import TimestampedMixin, declarative_base_for
from edulink.ledger import Ledger

SCHEMA = "students"
Base = declarative_base_for(SCHEMA)
LEDGER = Ledger(Base.metadata, queue=SCHEMA)


class InstitutionStatus(enum.StrEnum):
    REQUESTED = "requested"
    VERIFIED = "verified"
    ACTIVE = "active"
    SUSPENDED = "suspended"


class ClaimStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class ClaimMethod(enum.StrEnum):
    EMAIL_DOMAIN = "email_domain"
    ADMIN_REVIEW = "admin_review"


# Trust levels rise as a student proves more about themselves.
TRUST_REGISTERED = 0
TRUST_DOCUMENTS_UPLOADED = 1
TRUST_INSTITUTION_VERIFIED = 2
TRUST_INTERNSHIP_COMPLETED = 3
TRUST_CERTIFIED = 4


def _check_in(column: str, values: type[enum.StrEnum]) -> str:
    allowed = ", ".join(f"'{member.value}'" for member in values)
    return f"{column} IN ({allowed})"


class Institution(TimestampedMixin, Base):
    __tablename__ = "institutions"
    __table_args__ = (
        sa.CheckConstraint(_check_in("status", InstitutionStatus), name="status"),
    )

    name: Mapped[str] = mapped_column(sa.Text)
    email_domains: Mapped[list[str]] = mapped_column(
        ARRAY(sa.Text), default=list, server_default="{}"
    )
    status: Mapped[str] = mapped_column(sa.Text, default=InstitutionStatus.ACTIVE.value)


sa.Index("uq_institutions_lower_name", sa.func.lower(Institution.name), unique=True)


class Department(TimestampedMixin, Base):
    __tablename__ = "departments"
    __table_args__ = (
        sa.UniqueConstraint(
            "institution_id", "name", name="uq_departments_institution_name"
        ),
    )

    institution_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("institutions.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.Text)


class Cohort(TimestampedMixin, Base):
    __tablename__ = "cohorts"
    __table_args__ = (
        sa.CheckConstraint("end_year >= start_year", name="years_ordered"),
        sa.UniqueConstraint(
            "department_id",
            "name",
            "start_year",
            name="uq_cohorts_department_name_start",
        ),
    )

    institution_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("institutions.id", ondelete="CASCADE"), index=True
    )
    department_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("departments.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.Text)
    start_year: Mapped[int] = mapped_column(sa.SmallInteger)
    end_year: Mapped[int] = mapped_column(sa.SmallInteger)


class Student(TimestampedMixin, Base):
    __tablename__ = "students"
    __table_args__ = (
        sa.CheckConstraint("trust_level BETWEEN 0 AND 4", name="trust_level_range"),
        sa.CheckConstraint(
            "year_of_study BETWEEN 1 AND 10", name="year_of_study_range"
        ),
        sa.Index("ix_students_created_at_id", "created_at", "id"),
        sa.Index(
            "uq_students_institution_registration",
            "institution_id",
            "registration_number",
            unique=True,
            postgresql_where=sa.text(
                "institution_id IS NOT NULL AND registration_number IS NOT NULL"
            ),
        ),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    full_name: Mapped[str] = mapped_column(sa.Text)
    email: Mapped[str] = mapped_column(sa.Text)
    institution_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("institutions.id", ondelete="SET NULL"), index=True
    )
    registration_number: Mapped[str | None] = mapped_column(sa.Text)
    course: Mapped[str | None] = mapped_column(sa.Text)
    year_of_study: Mapped[int | None] = mapped_column(sa.SmallInteger)
    skills: Mapped[list[str]] = mapped_column(
        ARRAY(sa.Text), default=list, server_default="{}"
    )
    verified: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    trust_level: Mapped[int] = mapped_column(
        sa.SmallInteger, default=TRUST_REGISTERED, server_default="0"
    )


class AffiliationClaim(TimestampedMixin, Base):
    __tablename__ = "affiliation_claims"
    __table_args__ = (
        sa.CheckConstraint(_check_in("status", ClaimStatus), name="status"),
        sa.CheckConstraint(_check_in("method", ClaimMethod), name="method"),
        # At most one open claim per student, enforced by the database.
        sa.Index(
            "uq_affiliation_claims_pending_student",
            "student_id",
            unique=True,
            postgresql_where=sa.text("status = 'pending'"),
        ),
        sa.Index(
            "ix_affiliation_claims_institution_status", "institution_id", "status"
        ),
    )

    student_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("students.id", ondelete="CASCADE"), index=True
    )
    institution_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("institutions.id", ondelete="CASCADE")
    )
    status: Mapped[str] = mapped_column(sa.Text, default=ClaimStatus.PENDING.value)
    method: Mapped[str] = mapped_column(sa.Text)
    registration_number: Mapped[str | None] = mapped_column(sa.Text)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    decided_by: Mapped[uuid.UUID | None] = mapped_column()
    decided_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
