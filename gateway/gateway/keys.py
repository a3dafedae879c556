"""Signing keys: generation, rotation, the published JWKS and token signing.

The newest key without ``retired_at`` signs every access token. Rotation
adds a key and retires the others. A retired key stays published until every
token it signed has expired (the longest token lifetime plus the verifiers'
leeway), and ``prune`` deletes it after that. Private keys are stored as
unencrypted PKCS#8 PEM in the gateway schema.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from jwt.algorithms import OKPAlgorithm
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from edulink.auth import KeyCache, TokenVerifier
from gateway.models import SigningKey

log = logging.getLogger(__name__)

ALGORITHM = "EdDSA"
# Any number; it only keeps two gateways from creating a first key at once.
_FIRST_KEY_LOCK = 7_301_001


def key_thumbprint(public_key: Ed25519PublicKey) -> str:
    """Return the RFC 7638 JWK thumbprint (SHA-256, base64url) of an Ed25519 key."""
    raw = public_key.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    canonical = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":")
    )
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def new_signing_key() -> SigningKey:
    """Generate an Ed25519 key pair as an unsaved :class:`SigningKey` row."""
    private_key = Ed25519PrivateKey.generate()
    kid = key_thumbprint(private_key.public_key())
    jwk = OKPAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    jwk.update(kid=kid, alg=ALGORITHM, use="sig")
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return SigningKey(kid=kid, algorithm=ALGORITHM, private_key_pem=pem, public_jwk=jwk)


def current_key(session: Session) -> SigningKey | None:
    return session.scalars(
        sa.select(SigningKey)
        .where(SigningKey.retired_at.is_(None))
        .order_by(SigningKey.created_at.desc())
        .limit(1)
    ).first()


def ensure_signing_key(session: Session) -> SigningKey:
    """Return the signing key, creating the first one if there is none.

    Commits nothing; the caller's transaction does.
    """
    key = current_key(session)
    if key is not None:
        return key
    session.execute(sa.select(sa.func.pg_advisory_xact_lock(_FIRST_KEY_LOCK)))
    key = current_key(session)
    if key is None:
        key = new_signing_key()
        session.add(key)
        session.flush()
        log.info("created the first signing key %s", key.kid)
    return key


def rotate_signing_key(session: Session, *, now: datetime | None = None) -> SigningKey:
    """Add a new signing key and retire every other one. Returns the new key."""
    now = now or datetime.now(UTC)
    session.execute(sa.select(sa.func.pg_advisory_xact_lock(_FIRST_KEY_LOCK)))
    session.execute(
        sa.update(SigningKey)
        .where(SigningKey.retired_at.is_(None))
        .values(retired_at=now)
    )
    key = new_signing_key()
    session.add(key)
    session.flush()
    log.info("rotated signing keys: %s now signs", key.kid)
    return key


def published_filter(keep_retired_for: timedelta, now: datetime) -> sa.ColumnElement:
    return sa.or_(
        SigningKey.retired_at.is_(None),
        SigningKey.retired_at > now - keep_retired_for,
    )


def prune_keys(
    session: Session, *, keep_retired_for: timedelta, now: datetime | None = None
) -> list[str]:
    """Delete retired keys whose tokens have all expired. Returns their kids."""
    now = now or datetime.now(UTC)
    kids = session.scalars(
        sa.delete(SigningKey)
        .where(sa.not_(published_filter(keep_retired_for, now)))
        .returning(SigningKey.kid)
    ).all()
    if kids:
        log.info("deleted retired signing keys %s", ", ".join(kids))
    return list(kids)


def read_extra_jwks(path: Path | None) -> list[dict[str, Any]]:
    """Return the public keys of the optional extra JWKS file."""
    if path is None:
        return []
    document = json.loads(path.read_text(encoding="utf-8"))
    return [key for key in document.get("keys", []) if isinstance(key, dict)]


def published_jwks(
    connection: sa.Connection | Session,
    *,
    keep_retired_for: timedelta,
    extra_file: Path | None = None,
) -> dict[str, Any]:
    """Return the JWKS document: signing and recently retired keys, then extras."""
    now = datetime.now(UTC)
    jwks = connection.execute(
        sa.select(SigningKey.public_jwk)
        .where(published_filter(keep_retired_for, now))
        .order_by(SigningKey.created_at.desc())
    ).scalars()
    return {"keys": [*jwks, *read_extra_jwks(extra_file)]}


class TokenSigner:
    """Sign JWTs with the current key, re-read at most every ``cache_seconds``.

    A rotation made by another process takes effect here within that time.
    """

    def __init__(
        self,
        session_factory: Callable[[], Session],
        *,
        cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session_factory = session_factory
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._key: tuple[str, Ed25519PrivateKey] | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def sign(self, claims: Mapping[str, Any]) -> str:
        kid, private_key = self._current()
        return jwt.encode(
            dict(claims), private_key, algorithm=ALGORITHM, headers={"kid": kid}
        )

    def forget(self) -> None:
        """Re-read the signing key on the next :meth:`sign`."""
        self._key = None

    def _current(self) -> tuple[str, Ed25519PrivateKey]:
        key = self._key
        if key is not None and self._clock() - self._loaded_at < self._cache_seconds:
            return key
        with self._lock:
            with self._session_factory() as session, session.begin():
                row = ensure_signing_key(session)
                kid, pem = row.kid, row.private_key_pem
            private_key = serialization.load_pem_private_key(pem.encode(), None)
            assert isinstance(private_key, Ed25519PrivateKey)
            self._key = (kid, private_key)
            self._loaded_at = self._clock()
            return self._key


def local_verifier(
    engine: Engine,
    *,
    issuer: str,
    audience: str,
    keep_retired_for: timedelta,
    extra_file: Path | None,
    leeway_seconds: float,
) -> TokenVerifier:
    """Build a verifier that reads the published keys from the gateway's database.

    A token with an unknown kid makes it re-read the keys, at most once a
    second, so a rotation by another process is seen within a second.
    """

    def load() -> object:
        with Session(engine) as session, session.begin():
            # With no key at all, every token would get 503 instead of 401.
            ensure_signing_key(session)
            return published_jwks(
                session, keep_retired_for=keep_retired_for, extra_file=extra_file
            )

    # TokenVerifier reads keys from a URL or a file; the placeholder file is
    # never read because its key cache is replaced before first use.
    verifier = TokenVerifier(
        issuer=issuer,
        audience=audience,
        jwks_file="gateway.signing_keys",
        leeway_seconds=leeway_seconds,
    )
    verifier.keys = KeyCache(
        load,
        source="the gateway.signing_keys table",
        ttl_seconds=60.0,
        refetch_interval_seconds=1.0,
    )
    return verifier
