"""Sign-in sessions: login, refresh-token rotation, logout, client credentials.

A login starts a session, which is a family of refresh tokens. Each refresh
rotates the presented token: it is marked used and a successor is issued.
Presenting a used token again means it was copied, so the whole family is
revoked and both holders must sign in again. Refresh tokens and client
secrets are stored hashed: refresh tokens with SHA-256 (they are random),
client secrets with Argon2.
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from edulink.auth import Role
from edulink.errors import Conflict, Forbidden, Unauthorized, UnprocessableContent
from gateway.keys import TokenSigner
from gateway.models import Account, AccountStatus, RefreshToken, ServiceClient
from gateway.passwords import Passwords
from gateway.services import find_account, hash_token, new_token

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenConfig:
    issuer: str
    audience: str
    access_ttl: int
    refresh_ttl: int
    service_ttl: int


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    refresh_token: str | None = None
    refresh_expires_in: int | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
            body["refresh_expires_in"] = self.refresh_expires_in
        return body


class RefreshTokenReused(Unauthorized):
    """A rotated refresh token came back; its family has been revoked.

    The revocation must be committed even though the request fails.
    """


def _invalid_credentials() -> Unauthorized:
    return Unauthorized(
        "The email or password is incorrect.", error="invalid_credentials"
    )


def _invalid_refresh() -> Unauthorized:
    return Unauthorized(
        "The refresh token is invalid, expired or revoked. Sign in again.",
        error="invalid_grant",
    )


def access_claims(
    account: Account, *, config: TokenConfig, now: int | None = None
) -> dict[str, Any]:
    """Build an access token's claims; edulink.auth.principal_from_claims reads them."""
    issued_at = int(time.time()) if now is None else now
    return {
        "iss": config.issuer,
        "aud": config.audience,
        "sub": str(account.id),
        "role": account.role,
        "org_ids": sorted(str(org_id) for org_id in account.org_ids),
        "email": account.email,
        "email_verified": account.email_verified,
        "name": account.name,
        "iat": issued_at,
        "exp": issued_at + config.access_ttl,
        "jti": uuid.uuid4().hex,
    }


def _issue(
    session: Session,
    *,
    account: Account,
    family_id: uuid.UUID,
    signer: TokenSigner,
    config: TokenConfig,
) -> tuple[IssuedTokens, RefreshToken]:
    refresh_token = new_token()
    row = RefreshToken(
        account_id=account.id,
        family_id=family_id,
        token_hash=hash_token(refresh_token),
        expires_at=datetime.now(UTC) + timedelta(seconds=config.refresh_ttl),
    )
    session.add(row)
    session.flush()
    issued = IssuedTokens(
        access_token=signer.sign(access_claims(account, config=config)),
        expires_in=config.access_ttl,
        refresh_token=refresh_token,
        refresh_expires_in=config.refresh_ttl,
    )
    return issued, row


def login(
    session: Session,
    *,
    email: str,
    password: str,
    passwords: Passwords,
    signer: TokenSigner,
    config: TokenConfig,
) -> IssuedTokens:
    """Check the credentials and start a session, or raise 401."""
    account = find_account(session, email)
    if not passwords.check(account.password_hash if account else None, password):
        log.info("failed login for %s", "an account" if account else "no account")
        raise _invalid_credentials()
    assert account is not None
    if account.status != AccountStatus.active:
        raise Forbidden("This account is disabled. Contact support.")

    if passwords.needs_rehash(account.password_hash):
        account.password_hash = passwords.hash(password)
    account.last_login_at = datetime.now(UTC)
    issued, _ = _issue(
        session, account=account, family_id=uuid.uuid4(), signer=signer, config=config
    )
    log.info("account %s signed in", account.id)
    return issued


def refresh(
    session: Session, *, refresh_token: str, signer: TokenSigner, config: TokenConfig
) -> IssuedTokens:
    """Rotate a refresh token and return new tokens.

    Raises :class:`RefreshTokenReused` after revoking the family when the
    token was rotated before; the caller must commit, then let it propagate.
    """
    now = datetime.now(UTC)
    row = session.scalars(
        sa.select(RefreshToken)
        .where(RefreshToken.token_hash == hash_token(refresh_token))
        .with_for_update()
    ).first()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise _invalid_refresh()
    if row.rotated_at is not None:
        revoke_family(session, family_id=row.family_id, now=now)
        log.warning(
            "refresh token reused; revoked session %s of account %s",
            row.family_id,
            row.account_id,
        )
        raise RefreshTokenReused(
            "This refresh token was already used, so the session has been "
            "ended for safety. Sign in again.",
            error="invalid_grant",
        )

    account = session.get_one(Account, row.account_id)
    if account.status != AccountStatus.active:
        raise _invalid_refresh()
    issued, successor = _issue(
        session, account=account, family_id=row.family_id, signer=signer, config=config
    )
    row.rotated_at = now
    row.replaced_by = successor.id
    return issued


def revoke_family(
    session: Session, *, family_id: uuid.UUID, now: datetime | None = None
) -> None:
    session.execute(
        sa.update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now or datetime.now(UTC))
    )


def logout(session: Session, *, refresh_token: str) -> None:
    """End the session of ``refresh_token``. Unknown tokens are ignored."""
    family_id = session.scalar(
        sa.select(RefreshToken.family_id).where(
            RefreshToken.token_hash == hash_token(refresh_token)
        )
    )
    if family_id is not None:
        revoke_family(session, family_id=family_id)
        log.info("ended session %s", family_id)


# Client credentials for services.


def create_service_client(
    session: Session,
    *,
    client_id: str,
    audiences: Iterable[str],
    passwords: Passwords,
) -> str:
    """Register a service client and return its secret, which is not stored."""
    if session.get(ServiceClient, client_id) is not None:
        raise Conflict(f"A service client named {client_id} already exists.")
    secret = secrets.token_urlsafe(32)
    session.add(
        ServiceClient(
            client_id=client_id,
            secret_hash=passwords.hash(secret),
            audiences=sorted(set(audiences)),
        )
    )
    session.flush()
    log.info("registered service client %s", client_id)
    return secret


def client_credentials(
    session: Session,
    *,
    client_id: str,
    client_secret: str,
    audience: str | None,
    passwords: Passwords,
    signer: TokenSigner,
    config: TokenConfig,
) -> IssuedTokens:
    """Return a short-lived service token for a valid client id and secret."""
    client = session.get(ServiceClient, client_id)
    valid = passwords.check(client.secret_hash if client else None, client_secret)
    if client is None or not valid or client.disabled_at is not None:
        log.info("rejected client credentials for %r", client_id[:64])
        raise Unauthorized(
            "The client id or secret is invalid.", error="invalid_client"
        )

    audience = audience or config.audience
    if audience not in client.audiences:
        raise UnprocessableContent(
            f"Client {client_id} may not request tokens for audience {audience!r}.",
            allowed_audiences=list(client.audiences),
        )
    issued_at = int(time.time())
    claims = {
        "iss": config.issuer,
        "aud": audience,
        "sub": client_id,
        "role": str(Role.service),
        "org_ids": [],
        "email_verified": False,
        "iat": issued_at,
        "exp": issued_at + config.service_ttl,
        "jti": uuid.uuid4().hex,
    }
    return IssuedTokens(access_token=signer.sign(claims), expires_in=config.service_ttl)
