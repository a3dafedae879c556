"""Account rules: sign-up, invitations, email verification and password reset.

Sign-in sessions and tokens are in :mod:`gateway.sessions`. Every function
takes the caller's session and commits nothing; the view commits.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from edulink.auth import Principal, Role
from edulink.errors import BadRequest, Conflict, Forbidden, UnprocessableContent
from gateway import passwords as password_rules
from gateway.mail import EmailOutbox
from gateway.models import (
    Account,
    AccountStatus,
    ActionToken,
    Invitation,
    RefreshToken,
    TokenPurpose,
)
from gateway.passwords import Passwords

log = logging.getLogger(__name__)

# Roles an organisation's admin may invite into their own organisations.
ORG_ADMIN_INVITES = {
    Role.employer_admin: (Role.employer_admin, Role.supervisor),
    Role.institution_admin: (Role.institution_admin, Role.supervisor),
}
ROLES_WITH_ORGS = (Role.employer_admin, Role.institution_admin, Role.supervisor)


@dataclass(frozen=True)
class AccountConfig:
    """Lifetimes and the web app URL that account emails link to."""

    app_url: str
    verification_ttl: timedelta
    password_reset_ttl: timedelta
    invitation_ttl: timedelta


def hash_token(token: str) -> bytes:
    """Return the SHA-256 of a random token; only this is stored."""
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def normalize_email(email: str) -> str:
    return email.strip().lower()


def find_account(session: Session, email: str) -> Account | None:
    return session.scalars(
        sa.select(Account).where(sa.func.lower(Account.email) == normalize_email(email))
    ).first()


def check_password_rules(password: str, *, email: str) -> None:
    if len(password) < password_rules.MIN_LENGTH:
        raise UnprocessableContent(
            f"The password must have at least {password_rules.MIN_LENGTH} characters.",
            errors=[{"location": "json", "field": "password", "detail": "too short"}],
        )
    if password.strip().lower() == normalize_email(email):
        raise UnprocessableContent(
            "The password must not be the email address.",
            errors=[{"location": "json", "field": "password", "detail": "is email"}],
        )


def _ensure_email_free(session: Session, email: str) -> None:
    if find_account(session, email) is not None:
        raise Conflict(
            f"An account with the email {normalize_email(email)} already exists. "
            "Sign in, or reset the password."
        )


# Self-registration and email verification.


def register_student(
    session: Session,
    *,
    email: str,
    password: str,
    name: str,
    passwords: Passwords,
    outbox: EmailOutbox,
    config: AccountConfig,
) -> Account:
    """Create a student account and email a verification link."""
    check_password_rules(password, email=email)
    _ensure_email_free(session, email)
    account = Account(
        email=normalize_email(email),
        password_hash=passwords.hash(password),
        name=name.strip(),
        role=Role.student,
        org_ids=[],
        email_verified=False,
        status=AccountStatus.active,
    )
    session.add(account)
    session.flush()
    send_verification(session, account=account, outbox=outbox, config=config)
    log.info("registered student account %s", account.id)
    return account


def _issue_action_token(
    session: Session, *, account: Account, purpose: TokenPurpose, ttl: timedelta
) -> str:
    token = new_token()
    session.add(
        ActionToken(
            account_id=account.id,
            purpose=purpose,
            token_hash=hash_token(token),
            expires_at=datetime.now(UTC) + ttl,
        )
    )
    return token


def send_verification(
    session: Session, *, account: Account, outbox: EmailOutbox, config: AccountConfig
) -> None:
    """Email a new single-use verification link to the account's address."""
    token = _issue_action_token(
        session,
        account=account,
        purpose=TokenPurpose.verify_email,
        ttl=config.verification_ttl,
    )
    outbox.send(
        session,
        to=account.email,
        template="verify_email",
        context={
            "name": account.name,
            "token": token,
            "link": f"{config.app_url}/verify-email?token={token}",
        },
    )


def _redeem(session: Session, *, token: str, purpose: TokenPurpose) -> ActionToken:
    """Mark a valid single-use token used and return it, or raise BadRequest."""
    now = datetime.now(UTC)
    row = session.scalars(
        sa.select(ActionToken)
        .where(
            ActionToken.token_hash == hash_token(token),
            ActionToken.purpose == purpose,
        )
        .with_for_update()
    ).first()
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise BadRequest(
            "The token is invalid, already used or expired. Request a new email.",
            error="invalid_token",
        )
    row.used_at = now
    return row


def verify_email(session: Session, *, token: str) -> Account:
    """Redeem a verification token and mark the account's email verified."""
    row = _redeem(session, token=token, purpose=TokenPurpose.verify_email)
    account = session.get_one(Account, row.account_id)
    account.email_verified = True
    log.info("verified the email of account %s", account.id)
    return account


# Password reset.


def request_password_reset(
    session: Session, *, email: str, outbox: EmailOutbox, config: AccountConfig
) -> None:
    """Email a reset link if an active account has ``email``; silent otherwise.

    The caller gets the same response either way, so it learns nothing about
    which addresses have accounts.
    """
    account = find_account(session, email)
    if account is None or account.status != AccountStatus.active:
        log.info("password reset requested for an unknown or disabled address")
        return
    token = _issue_action_token(
        session,
        account=account,
        purpose=TokenPurpose.reset_password,
        ttl=config.password_reset_ttl,
    )
    outbox.send(
        session,
        to=account.email,
        template="reset_password",
        context={
            "name": account.name,
            "token": token,
            "link": f"{config.app_url}/reset-password?token={token}",
        },
    )


def reset_password(
    session: Session, *, token: str, password: str, passwords: Passwords
) -> Account:
    """Set a new password, then end every sign-in session of the account."""
    row = _redeem(session, token=token, purpose=TokenPurpose.reset_password)
    account = session.get_one(Account, row.account_id)
    check_password_rules(password, email=account.email)
    account.password_hash = passwords.hash(password)
    now = datetime.now(UTC)

    # Other outstanding reset links stop working too.
    session.execute(
        sa.update(ActionToken)
        .where(
            ActionToken.account_id == account.id,
            ActionToken.purpose == TokenPurpose.reset_password,
            ActionToken.used_at.is_(None),
        )
        .values(used_at=now)
    )
    revoke_all_sessions(session, account_id=account.id, now=now)
    log.info("reset the password of account %s", account.id)
    return account


def revoke_all_sessions(
    session: Session, *, account_id: uuid.UUID, now: datetime | None = None
) -> None:
    session.execute(
        sa.update(RefreshToken)
        .where(RefreshToken.account_id == account_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now or datetime.now(UTC))
    )


# Invitations.


def check_invitation_allowed(
    inviter: Principal, *, role: Role, org_ids: Iterable[uuid.UUID]
) -> None:
    """Raise Forbidden or UnprocessableContent unless ``inviter`` may invite so."""
    orgs = set(org_ids)
    if role is Role.student or role is Role.service:
        raise UnprocessableContent(
            f"Accounts with role {role} cannot be invited; students sign up "
            "themselves and services use client credentials."
        )
    if role in ROLES_WITH_ORGS and not orgs:
        raise UnprocessableContent(f"Role {role} needs at least one organisation id.")
    if role not in ROLES_WITH_ORGS and orgs:
        raise UnprocessableContent(f"Role {role} belongs to no organisation.")

    if inviter.is_system_admin:
        return
    allowed_roles = ORG_ADMIN_INVITES.get(inviter.role)
    if allowed_roles is None:
        raise Forbidden(f"Role {inviter.role} may not invite anyone.")
    if role not in allowed_roles:
        raise Forbidden(
            f"A {inviter.role} may invite only "
            f"{' and '.join(str(r) for r in allowed_roles)} accounts.",
            allowed_roles=[str(r) for r in allowed_roles],
        )
    outside = orgs - set(inviter.org_ids)
    if outside:
        raise Forbidden(
            "You may invite people only into your own organisations.",
            org_ids=sorted(str(org) for org in outside),
        )


def invite(
    session: Session,
    *,
    inviter: Principal,
    email: str,
    role: Role,
    org_ids: list[uuid.UUID],
    outbox: EmailOutbox,
    config: AccountConfig,
) -> Invitation:
    """Create an invitation and email its link; older open ones for the address end."""
    check_invitation_allowed(inviter, role=role, org_ids=org_ids)
    _ensure_email_free(session, email)
    now = datetime.now(UTC)
    session.execute(
        sa.update(Invitation)
        .where(
            sa.func.lower(Invitation.email) == normalize_email(email),
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    token = new_token()
    invitation = Invitation(
        email=normalize_email(email),
        role=role,
        org_ids=sorted(set(org_ids)),
        invited_by=inviter.user_id,
        token_hash=hash_token(token),
        expires_at=now + config.invitation_ttl,
    )
    session.add(invitation)
    session.flush()
    outbox.send(
        session,
        to=invitation.email,
        template="invitation",
        context={
            "role": str(role),
            "token": token,
            "link": f"{config.app_url}/accept-invitation?token={token}",
        },
    )
    log.info(
        "account %s invited a %s as invitation %s", inviter.subject, role, invitation.id
    )
    return invitation


def accept_invitation(
    session: Session, *, token: str, name: str, password: str, passwords: Passwords
) -> Account:
    """Create the invited account; the emailed token proves the address."""
    now = datetime.now(UTC)
    invitation = session.scalars(
        sa.select(Invitation)
        .where(Invitation.token_hash == hash_token(token))
        .with_for_update()
    ).first()
    if (
        invitation is None
        or invitation.accepted_at is not None
        or invitation.revoked_at is not None
        or invitation.expires_at <= now
    ):
        raise BadRequest(
            "The invitation is invalid, already accepted or expired. "
            "Ask for a new invitation.",
            error="invalid_token",
        )
    check_password_rules(password, email=invitation.email)
    _ensure_email_free(session, invitation.email)
    account = Account(
        email=invitation.email,
        password_hash=passwords.hash(password),
        name=name.strip(),
        role=invitation.role,
        org_ids=list(invitation.org_ids),
        email_verified=True,
        status=AccountStatus.active,
    )
    session.add(account)
    session.flush()
    invitation.accepted_at = now
    invitation.account_id = account.id
    log.info("invitation %s accepted as account %s", invitation.id, account.id)
    return account


def create_system_admin(
    session: Session, *, email: str, name: str, password: str, passwords: Passwords
) -> Account:
    """Create a system admin directly; the bootstrap CLI command uses this."""
    check_password_rules(password, email=email)
    _ensure_email_free(session, email)
    account = Account(
        email=normalize_email(email),
        password_hash=passwords.hash(password),
        name=name.strip(),
        role=Role.system_admin,
        org_ids=[],
        email_verified=True,
        status=AccountStatus.active,
    )
    session.add(account)
    session.flush()
    log.info("created system admin account %s", account.id)
    return account
