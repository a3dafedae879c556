"""Tables of the ``gateway`` schema: accounts, their tokens, signing keys, counters."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column

from edulink.auth import Role
from edulink.db import TimestampedMixin, declarative_base_for

SCHEMA = "gateway"

Base = declarative_base_for(SCHEMA)

Timestamp = sa.DateTime(timezone=True)


def _in(values: Any) -> str:
    return ", ".join(f"'{value}'" for value in values)


class AccountStatus(StrEnum):
    active = "active"
    disabled = "disabled"


class TokenPurpose(StrEnum):
    """Purpose of a single-use emailed token."""

    verify_email = "verify_email"
    reset_password = "reset_password"  # noqa: S105 - a purpose, not a secret


USER_ROLES = tuple(role for role in Role if role is not Role.service)


class Account(TimestampedMixin, Base):
    """A person who signs in: a student, an organisation's staff or an operator."""

    __tablename__ = "accounts"
    __table_args__ = (
        sa.Index("uq_accounts_lower_email", func.lower(sa.text("email")), unique=True),
        sa.CheckConstraint(f"role IN ({_in(USER_ROLES)})", name="role"),
        sa.CheckConstraint(f"status IN ({_in(AccountStatus)})", name="status"),
    )

    email: Mapped[str] = mapped_column(sa.Text)
    password_hash: Mapped[str] = mapped_column(sa.Text)
    name: Mapped[str] = mapped_column(sa.Text)
    role: Mapped[str] = mapped_column(sa.Text)
    org_ids: Mapped[list[uuid.UUID]] = mapped_column(
        postgresql.ARRAY(sa.Uuid), server_default="{}", default=list
    )
    email_verified: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(sa.Text, default=AccountStatus.active)
    last_login_at: Mapped[datetime | None] = mapped_column(Timestamp)


class Invitation(TimestampedMixin, Base):
    """An offer to join with a role, sent by email; accepting it creates the account."""

    __tablename__ = "invitations"
    __table_args__ = (
        sa.Index("ix_invitations_lower_email", func.lower(sa.text("email"))),
        sa.CheckConstraint(f"role IN ({_in(USER_ROLES)})", name="role"),
    )

    email: Mapped[str] = mapped_column(sa.Text)
    role: Mapped[str] = mapped_column(sa.Text)
    org_ids: Mapped[list[uuid.UUID]] = mapped_column(
        postgresql.ARRAY(sa.Uuid), server_default="{}", default=list
    )
    invited_by: Mapped[uuid.UUID]
    token_hash: Mapped[bytes] = mapped_column(sa.LargeBinary, unique=True)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
    accepted_at: Mapped[datetime | None] = mapped_column(Timestamp)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp)
    account_id: Mapped[uuid.UUID | None]


class ActionToken(Base):
    """A single-use emailed token: email verification or password reset.

    Only the SHA-256 hash of the token is stored.
    """

    __tablename__ = "action_tokens"
    __table_args__ = (
        sa.CheckConstraint(f"purpose IN ({_in(TokenPurpose)})", name="purpose"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    account_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(sa.Text)
    token_hash: Mapped[bytes] = mapped_column(sa.LargeBinary, unique=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
    used_at: Mapped[datetime | None] = mapped_column(Timestamp)


class RefreshToken(Base):
    """One refresh token of a sign-in session (its family).

    Using a token rotates it: ``rotated_at`` is set and a successor joins the
    family. Presenting a rotated token again revokes the whole family.
    """

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    account_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    family_id: Mapped[uuid.UUID] = mapped_column(index=True)
    token_hash: Mapped[bytes] = mapped_column(sa.LargeBinary, unique=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
    rotated_at: Mapped[datetime | None] = mapped_column(Timestamp)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp)
    replaced_by: Mapped[uuid.UUID | None]


class SigningKey(Base):
    """An Ed25519 key that signs access tokens.

    The newest key without ``retired_at`` signs. A retired key stays in the
    JWKS until the tokens it signed have expired.
    """

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    algorithm: Mapped[str] = mapped_column(sa.Text, default="EdDSA")
    private_key_pem: Mapped[str] = mapped_column(sa.Text)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(postgresql.JSONB)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    retired_at: Mapped[datetime | None] = mapped_column(Timestamp)


class ServiceClient(Base):
    """A service that obtains tokens with the client-credentials grant."""

    __tablename__ = "service_clients"

    client_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    secret_hash: Mapped[str] = mapped_column(sa.Text)
    audiences: Mapped[list[str]] = mapped_column(postgresql.ARRAY(sa.Text))
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    disabled_at: Mapped[datetime | None] = mapped_column(Timestamp)


# Rate-limit counters, written by gateway.ratelimit.storage with plain SQL.
# UNLOGGED: no WAL per hit; a database crash empties the table, which only
# resets the current windows.
rate_limit_counters = sa.Table(
    "rate_limit_counters",
    Base.metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.Float(precision=53), nullable=False),
    sa.Index("ix_rate_limit_counters_expires_at", "expires_at"),
    prefixes=["UNLOGGED"],
)
