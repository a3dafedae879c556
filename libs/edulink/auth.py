"""Bearer token authentication: JWT verification against a JWKS, and Flask glue.

Access tokens are JWTs signed with an asymmetric key (EdDSA with Ed25519, or
RS256). Services hold only the public keys, read from a JWKS document at a URL
or in a file and cached by key id (``kid``). A token signed with a new key
makes the cache refetch the document, at most once per refetch interval, so
rotating the issuer's key needs no restart and tokens with made-up key ids
cannot flood the JWKS endpoint.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import jwt
import requests
from flask import Flask, current_app, g, has_app_context, request

from edulink.errors import Forbidden, ServiceUnavailable, Unauthorized
from edulink.logs import actor_var
from edulink.settings import PlatformSettings

log = logging.getLogger(__name__)

ACCEPTED_ALGORITHMS = ("EdDSA", "RS256")
REQUIRED_CLAIMS = ("iss", "aud", "sub", "iat", "exp", "role")

# Real access tokens are well under 2 KiB. The cap keeps a hostile header
# from costing a base64 and JSON decode of megabytes.
MAX_TOKEN_LENGTH = 8192
MAX_JWKS_BYTES = 1_048_576

# Maximum number of verified tokens each verifier remembers. A client sends its
# token with every request, and a remembered token skips the header parse and
# signature check (0.2 ms per Ed25519 token on the machine in BENCHMARKS.md).
VERIFIED_TOKENS_CACHED = 1024

_BEARER = re.compile(r"^Bearer +([A-Za-z0-9\-._~+/]+=*) *$", re.IGNORECASE)
_EXTENSION = "edulink.auth"


class Role(StrEnum):
    student = "student"
    employer_admin = "employer_admin"
    institution_admin = "institution_admin"
    supervisor = "supervisor"
    support_staff = "support_staff"
    system_admin = "system_admin"
    service = "service"


@dataclass(frozen=True)
class Principal:
    """The verified caller of a request: a user, or another service.

    ``subject`` is the user's UUID as a string, or the client id when ``role``
    is :attr:`Role.service`. ``org_ids`` are the institutions or employers the
    user belongs to or administers.
    """

    subject: str
    role: Role
    org_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)
    email: str | None = None
    email_verified: bool = False
    name: str | None = None

    def __post_init__(self) -> None:
        if self.role is not Role.service:
            # Raises ValueError, so a user principal always has a usable user_id.
            uuid.UUID(self.subject)

    @property
    def user_id(self) -> uuid.UUID | None:
        """The user's id, or None for a service."""
        if self.is_service:
            return None
        return uuid.UUID(self.subject)

    @property
    def is_system_admin(self) -> bool:
        return self.role is Role.system_admin

    @property
    def is_service(self) -> bool:
        return self.role is Role.service


class JwksError(Exception):
    """The JWKS document could not be read or contains no usable key."""


def _invalid_token(detail: str) -> Unauthorized:
    return Unauthorized(detail, error="invalid_token")


def _short(value: object) -> str:
    """Render an untrusted header value for a message, capped at 40 characters."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_jwks(document: object, algorithms: Iterable[str]) -> dict[str, jwt.PyJWK]:
    """Return the signing keys of a JWKS document by kid.

    Keys without a kid, keys for encryption (``use`` other than ``sig``) and
    keys of an algorithm outside ``algorithms`` are skipped, so a symmetric
    (``oct``) key published by mistake can never verify a token.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise JwksError("the JWKS document has no 'keys' list")

    accepted = set(algorithms)
    keys: dict[str, jwt.PyJWK] = {}
    for entry in document["keys"]:
        if not isinstance(entry, Mapping):
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid or entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(dict(entry))
        except jwt.PyJWTError as error:
            log.warning("skipping JWKS key %s: %s", _short(kid), error)
            continue
        if key.algorithm_name in accepted:
            keys[kid] = key

    if not keys:
        raise JwksError("the JWKS document has no usable signing key")
    return keys


def jwks_url_loader(
    url: str, *, connect_timeout: float = 2.0, read_timeout: float = 5.0
) -> Callable[[], object]:
    """Build a function that downloads the JWKS document at ``url``."""
    session = requests.Session()
    # Proxy variables in the environment must not reroute the key download.
    session.trust_env = False

    def load() -> object:
        try:
            with session.get(
                url,
                timeout=(connect_timeout, read_timeout),
                allow_redirects=False,
                stream=True,
                headers={"Accept": "application/json"},
            ) as response:
                if response.status_code != 200:
                    raise JwksError(f"GET {url} returned {response.status_code}")
                body = response.raw.read(MAX_JWKS_BYTES + 1, decode_content=True)
        except requests.RequestException as error:
            raise JwksError(f"GET {url} failed: {error}") from error
        if len(body) > MAX_JWKS_BYTES:
            raise JwksError(f"GET {url} returned more than {MAX_JWKS_BYTES} bytes")
        try:
            return json.loads(body)
        except ValueError as error:
            raise JwksError(f"GET {url} returned invalid JSON: {error}") from error

    return load


def jwks_file_loader(path: str | Path) -> Callable[[], object]:
    """Build a function that reads the JWKS document in the file at ``path``."""
    file_path = Path(path)

    def load() -> object:
        try:
            return json.loads(file_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise JwksError(f"reading {file_path} failed: {error}") from error

    return load


class KeyCache:
    """Signing keys by kid, reloaded after ``ttl_seconds`` or for an unknown kid.

    Loads, successful or not, are at least ``refetch_interval_seconds`` apart.

    NOTE: when a reload fails the previous keys stay in use with no age limit,
    so a key removed from the JWKS during an outage verifies until a reload
    succeeds.
    """

    def __init__(
        self,
        load: Callable[[], object],
        *,
        source: str,
        algorithms: Iterable[str] = ACCEPTED_ALGORITHMS,
        ttl_seconds: float = 300.0,
        refetch_interval_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._source = source
        self._algorithms = tuple(algorithms)
        self._ttl = ttl_seconds
        self.refetch_interval_seconds = refetch_interval_seconds
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._loaded_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = threading.Lock()

    def get(self, kid: str) -> jwt.PyJWK | None:
        """Return the key for ``kid``, or None when the issuer does not publish it.

        Raises :class:`JwksError` when no key set was ever loaded.
        """
        keys = self._keys
        if kid in keys and self._is_fresh(self._clock()):
            return keys[kid]

        # One thread reloads while the others wait for its result, except that
        # a kid already cached keeps verifying with the stale key meanwhile.
        if not self._lock.acquire(blocking=kid not in keys):
            return keys[kid]
        try:
            now = self._clock()
            if kid not in self._keys or not self._is_fresh(now):
                self._reload_unless_recent(now)
            if self._loaded_at is None:
                raise JwksError(f"no signing keys loaded from {self._source}")
            return self._keys.get(kid)
        finally:
            self._lock.release()

    def peek(self, kid: str) -> jwt.PyJWK | None:
        """Return the key for ``kid`` while the key set is fresh, never loading it."""
        if not self._is_fresh(self._clock()):
            return None
        return self._keys.get(kid)

    def _is_fresh(self, now: float) -> bool:
        return self._loaded_at is not None and now - self._loaded_at < self._ttl

    def _reload_unless_recent(self, now: float) -> None:
        if (
            self._attempted_at is not None
            and now - self._attempted_at < self.refetch_interval_seconds
        ):
            return

        self._attempted_at = now
        try:
            keys = parse_jwks(self._load(), self._algorithms)
        except JwksError as error:
            log.warning("loading signing keys from %s failed: %s", self._source, error)
            return

        self._keys = keys
        # Freshness counts from when the keys arrived, not from when the slow
        # request started.
        self._loaded_at = self._clock()
        log.info(
            "loaded %d signing keys from %s: kids %s",
            len(keys),
            self._source,
            ", ".join(sorted(keys)),
        )


@dataclass(frozen=True)
class _VerifiedToken:
    principal: Principal
    kid: str
    key: jwt.PyJWK
    expires_at: float


class TokenVerifier:
    """Verify access tokens and turn their claims into a :class:`Principal`.

    Every rejection raises :class:`Unauthorized` (401 with
    ``WWW-Authenticate: Bearer error="invalid_token"``). When no signing key
    could ever be loaded it raises :class:`ServiceUnavailable` instead, because
    the token may well be valid.

    A verified token is remembered until its ``exp`` and accepted again
    without a signature check while the key cache is fresh and contains the key
    that verified it. Once the key cache is stale the token takes the full
    path again, so a retired key stops working as soon as it would without
    the memo.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_url: str | None = None,
        jwks_file: str | Path | None = None,
        leeway_seconds: float = 30.0,
        cache_ttl_seconds: float = 300.0,
        refetch_interval_seconds: float = 30.0,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        verified_tokens_cached: int = VERIFIED_TOKENS_CACHED,
    ) -> None:
        if jwks_url is not None and jwks_file is not None:
            raise ValueError("pass only one of jwks_url and jwks_file")

        if jwks_url is not None:
            load = jwks_url_loader(
                jwks_url, connect_timeout=connect_timeout, read_timeout=read_timeout
            )
            source = jwks_url
        elif jwks_file is not None:
            load = jwks_file_loader(jwks_file)
            source = str(jwks_file)
        else:
            raise ValueError("pass one of jwks_url and jwks_file")

        self.issuer = issuer
        self.audience = audience
        self.leeway_seconds = leeway_seconds
        self.keys = KeyCache(
            load,
            source=source,
            ttl_seconds=cache_ttl_seconds,
            refetch_interval_seconds=refetch_interval_seconds,
        )
        self._verified: dict[str, _VerifiedToken] = {}
        self._verified_limit = verified_tokens_cached
        self._verified_lock = threading.Lock()

    def verify(self, token: str) -> Principal:
        """Check the token's signature and claims and return its principal."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise _invalid_token(
                f"The access token is longer than {MAX_TOKEN_LENGTH} characters."
            )

        remembered = self._remembered(token)
        if remembered is not None:
            return remembered

        header = self._read_header(token)
        key = self._signing_key(header)
        claims = self._decode(token, key)
        principal = principal_from_claims(claims)
        self._remember(
            token, _VerifiedToken(principal, header["kid"], key, claims["exp"])
        )
        return principal

    def _remembered(self, token: str) -> Principal | None:
        verified = self._verified.get(token)
        if verified is None:
            return None
        key = self.keys.peek(verified.kid)
        if key is not verified.key or time.time() >= verified.expires_at:
            with self._verified_lock:
                self._verified.pop(token, None)
            return None
        return verified.principal

    def _remember(self, token: str, verified: _VerifiedToken) -> None:
        if self._verified_limit <= 0 or time.time() >= verified.expires_at:
            return
        with self._verified_lock:
            if len(self._verified) >= self._verified_limit:
                # Dicts keep insertion order, so this drops the oldest entry.
                self._verified.pop(next(iter(self._verified)), None)
            self._verified[token] = verified

    def _read_header(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _invalid_token("The access token is not a well-formed JWT.") from None

        algorithm = header.get("alg")
        if algorithm not in ACCEPTED_ALGORITHMS:
            log.debug("rejected token with alg %s", _short(algorithm))
            raise _invalid_token(
                f"The access token is signed with algorithm {_short(algorithm)}, "
                f"which is not accepted. Accepted: {', '.join(ACCEPTED_ALGORITHMS)}."
            )
        return header

    def _signing_key(self, header: Mapping[str, Any]) -> jwt.PyJWK:
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _invalid_token("The access token has no key id (kid) header.")

        try:
            key = self.keys.get(kid)
        except JwksError:
            retry_after = max(1, round(self.keys.refetch_interval_seconds))
            raise ServiceUnavailable(
                "The keys that verify access tokens could not be loaded. Retry later.",
                headers={"Retry-After": str(retry_after)},
            ) from None

        if key is None:
            log.debug("rejected token with unknown kid %s", _short(kid))
            raise _invalid_token(
                "The access token is signed with an unknown key. Sign in again."
            )
        if key.algorithm_name != header["alg"]:
            raise _invalid_token(
                f"The access token's algorithm {header['alg']} does not match "
                f"its key, which uses {key.algorithm_name}."
            )
        return key

    def _decode(self, token: str, key: jwt.PyJWK) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[key.algorithm_name],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway_seconds,
                options={
                    "require": list(REQUIRED_CLAIMS),
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.PyJWTError as error:
            log.debug("rejected token: %s", error)
            raise _invalid_token(_rejection_detail(error)) from None


def _rejection_detail(error: jwt.PyJWTError) -> str:
    if isinstance(error, jwt.ExpiredSignatureError):
        return "The access token has expired. Refresh it or sign in again."
    if isinstance(error, jwt.ImmatureSignatureError):
        return "The access token is not valid yet (nbf or iat is in the future)."
    if isinstance(error, jwt.InvalidIssuerError):
        return "The access token's issuer (iss) is not accepted."
    if isinstance(error, jwt.InvalidAudienceError):
        return "The access token's audience (aud) does not include this service."
    if isinstance(error, jwt.MissingRequiredClaimError):
        return f"The access token has no {error.claim!r} claim."
    if isinstance(error, jwt.InvalidSignatureError):
        return "The access token's signature is invalid."
    return f"The access token is invalid: {error}."


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    """Build the principal from verified claims, rejecting ill-typed values."""
    try:
        role = Role(claims["role"])
    except (ValueError, TypeError):
        raise _invalid_token(
            f"The access token's role {_short(claims.get('role'))} is unknown."
        ) from None

    subject = claims["sub"]
    if not isinstance(subject, str) or not subject:
        raise _invalid_token("The access token's subject (sub) is empty.")

    email = claims.get("email")
    name = claims.get("name")
    email_verified = claims.get("email_verified", False)
    if email is not None and not isinstance(email, str):
        raise _invalid_token("The access token's email claim is not a string.")
    if name is not None and not isinstance(name, str):
        raise _invalid_token("The access token's name claim is not a string.")
    if not isinstance(email_verified, bool):
        raise _invalid_token(
            "The access token's email_verified claim is not a boolean."
        )

    try:
        return Principal(
            subject=subject,
            role=role,
            org_ids=_org_ids(claims.get("org_ids", [])),
            email=email,
            email_verified=email_verified,
            name=name,
        )
    except ValueError:
        raise _invalid_token(
            "The access token's subject (sub) is not a user id."
        ) from None


def _org_ids(value: object) -> frozenset[uuid.UUID]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid_token("The access token's org_ids claim is not a list of ids.")
    try:
        return frozenset(uuid.UUID(item) for item in value)
    except ValueError:
        raise _invalid_token(
            "The access token's org_ids claim contains an invalid id."
        ) from None


def verifier_from_settings(settings: PlatformSettings) -> TokenVerifier:
    """Build the verifier that a service configures through its settings."""
    return TokenVerifier(
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        jwks_url=settings.jwks_url,
        jwks_file=settings.jwks_file,
        connect_timeout=settings.http_connect_timeout,
        read_timeout=settings.http_read_timeout,
    )


def bearer_token(header: str) -> str:
    """Return the token of an ``Authorization: Bearer`` header value."""
    match = _BEARER.match(header)
    if match is None:
        raise Unauthorized(
            "The Authorization header must be 'Bearer ' followed by a token.",
            error="invalid_request",
        )
    return match.group(1)


def init_auth(app: Flask, verifier: TokenVerifier) -> None:
    """Authenticate every request of ``app`` that carries a bearer token.

    Requests without an Authorization header pass through anonymously, and
    each view decides with :func:`require_principal`. A malformed header or an
    invalid token fails the request with 401 before the view runs, so
    ``register_error_handlers`` must be installed for a problem+json body, and
    ``init_request_ids`` called first for its request id.
    """
    app.extensions[_EXTENSION] = verifier
    app.before_request(_authenticate)
    app.teardown_request(_unbind_actor)


def _authenticate() -> None:
    header = request.headers.get("Authorization")
    if header is None:
        return

    verifier: TokenVerifier = current_app.extensions[_EXTENSION]
    principal = verifier.verify(bearer_token(header))
    g._edulink_principal = principal
    g._edulink_actor_token = actor_var.set(principal.subject)


def _unbind_actor(_error: BaseException | None) -> None:
    token = g.pop("_edulink_actor_token", None)
    if token is not None:
        actor_var.reset(token)


def current_principal() -> Principal | None:
    """Return the authenticated caller, or None when anonymous or outside a request."""
    if not has_app_context():
        return None
    return g.get("_edulink_principal")


def require_principal(*roles: Role) -> Principal:
    """Return the caller, who must be signed in and, if given, hold one of ``roles``.

    Raises :class:`Unauthorized` without a token and :class:`Forbidden` for a
    role outside ``roles``. System admins get no implicit pass: list
    :attr:`Role.system_admin` where they may act.
    """
    principal = current_principal()
    if principal is None:
        raise Unauthorized(
            "This endpoint requires an access token in the Authorization header.",
            error="missing_token",
        )

    if roles and principal.role not in roles:
        allowed = sorted(str(role) for role in roles)
        raise Forbidden(
            f"Role {principal.role} may not do this. "
            f"Allowed roles: {', '.join(allowed)}.",
            allowed_roles=allowed,
        )
    return principal
