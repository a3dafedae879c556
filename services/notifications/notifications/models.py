"""Tables of the ``notifications`` schema."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from edulink.db import TimestampedMixin, declarative_base_for

SCHEMA = "notifications"
Base = declarative_base_for(SCHEMA)


class Kind(enum.StrEnum):
    """Notification kinds that users set preferences for.

    Producers may send other kinds too; those get the default preferences.
    """

    APPLICATION_STATUS_CHANGED = "application_status_changed"
    APPLICATION_WITHDRAWN = "application_withdrawn"
    OPPORTUNITY_DEADLINE_NEAR = "opportunity_deadline_near"
    DOCUMENT_READY = "document_ready"
    AFFILIATION_DECIDED = "affiliation_decided"
    TICKET_REPLY = "ticket_reply"
    SYSTEM_ALERT = "system_alert"


class TicketCategory(enum.StrEnum):
    TECHNICAL = "technical"
    AFFILIATION = "affiliation"
    INTERNSHIP = "internship"
    ACCOUNT = "account"
    OTHER = "other"


class TicketPriority(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class TicketStatus(enum.StrEnum):
    OPEN = "OPEN"
    IN_PROGRESS = "IN_PROGRESS"
    RESOLVED = "RESOLVED"
    CLOSED = "CLOSED"


class AuthorRole(enum.StrEnum):
    OWNER = "owner"
    STAFF = "staff"


class AlertSeverity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


def _check_in(column: str, values: type[enum.StrEnum]) -> str:
    allowed = ", ".join(f"'{member.value}'" for member in values)
    return f"{column} IN ({allowed})"


class Notification(TimestampedMixin, Base):
    """One message in an inbox: a user's, or the shared inbox of an organisation.

    ``idempotency_key`` is unique, so a job delivered twice stores one row.
    ``refresh`` lists the client query keys to refetch when the event
    arrives.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        sa.CheckConstraint(
            "(recipient_user_id IS NULL) <> (recipient_org_id IS NULL)",
            name="one_recipient",
        ),
        sa.Index(
            "ix_notifications_user_created", "recipient_user_id", "created_at", "id"
        ),
        sa.Index(
            "ix_notifications_org_created", "recipient_org_id", "created_at", "id"
        ),
        sa.Index(
            "ix_notifications_user_unread",
            "recipient_user_id",
            postgresql_where=sa.text("read_at IS NULL"),
        ),
    )

    recipient_user_id: Mapped[uuid.UUID | None] = mapped_column()
    recipient_org_id: Mapped[uuid.UUID | None] = mapped_column()
    kind: Mapped[str] = mapped_column(sa.Text)
    title: Mapped[str] = mapped_column(sa.Text)
    body: Mapped[str] = mapped_column(sa.Text)
    entity_type: Mapped[str | None] = mapped_column(sa.Text)
    entity_id: Mapped[uuid.UUID | None] = mapped_column()
    refresh: Mapped[list[Any]] = mapped_column(JSONB, default=list, server_default="[]")
    idempotency_key: Mapped[str] = mapped_column(sa.Text, unique=True)
    read_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


class Preference(Base):
    """A user's delivery choice for one kind. In-app delivery is always on."""

    __tablename__ = "preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    email: Mapped[bool] = mapped_column(default=True)
    realtime: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True),
        server_default=sa.func.now(),
        onupdate=sa.func.now(),
    )


class Ticket(TimestampedMixin, Base):
    __tablename__ = "tickets"
    __table_args__ = (
        sa.CheckConstraint(_check_in("category", TicketCategory), name="category"),
        sa.CheckConstraint(_check_in("priority", TicketPriority), name="priority"),
        sa.CheckConstraint(_check_in("status", TicketStatus), name="status"),
        sa.Index("ix_tickets_user_created", "user_id", "created_at", "id"),
        sa.Index("ix_tickets_status_created", "status", "created_at", "id"),
    )

    user_id: Mapped[uuid.UUID | None] = mapped_column()
    name: Mapped[str] = mapped_column(sa.Text)
    email: Mapped[str] = mapped_column(sa.Text)
    tracking_code: Mapped[str] = mapped_column(sa.Text, unique=True)
    subject: Mapped[str] = mapped_column(sa.Text)
    category: Mapped[str] = mapped_column(sa.Text)
    priority: Mapped[str] = mapped_column(sa.Text, default=TicketPriority.NORMAL.value)
    status: Mapped[str] = mapped_column(sa.Text, default=TicketStatus.OPEN.value)
    assignee_id: Mapped[uuid.UUID | None] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


class TicketMessage(TimestampedMixin, Base):
    """A reply on a ticket. ``internal`` notes are for support staff only."""

    __tablename__ = "ticket_messages"
    __table_args__ = (
        sa.CheckConstraint(_check_in("author_role", AuthorRole), name="author_role"),
        sa.CheckConstraint(
            "NOT internal OR author_role = 'staff'", name="internal_by_staff"
        ),
        sa.Index("ix_ticket_messages_ticket_created", "ticket_id", "created_at", "id"),
    )

    ticket_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("tickets.id", ondelete="CASCADE")
    )
    author_role: Mapped[str] = mapped_column(sa.Text)
    author_id: Mapped[uuid.UUID | None] = mapped_column()
    author_name: Mapped[str] = mapped_column(sa.Text)
    body: Mapped[str] = mapped_column(sa.Text)
    internal: Mapped[bool] = mapped_column(default=False, server_default=sa.false())


class Alert(TimestampedMixin, Base):
    """A platform-wide message, listed for everyone until ``expires_at``."""

    __tablename__ = "alerts"
    __table_args__ = (
        sa.CheckConstraint(_check_in("severity", AlertSeverity), name="severity"),
        sa.Index("ix_alerts_expires_at", "expires_at"),
    )

    severity: Mapped[str] = mapped_column(sa.Text)
    message: Mapped[str] = mapped_column(sa.Text)
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    created_by: Mapped[uuid.UUID] = mapped_column()
