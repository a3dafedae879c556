"""Mint access tokens for tests, and publish their keys as a JWKS file.

A :class:`TokenFactory` plays the identity provider. It keeps private keys,
writes the matching public JWKS document where a service's
:class:`~edulink.auth.TokenVerifier` reads it, and signs tokens with any role
and claims. The ``forge_*`` methods build the tokens an attacker would try.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm

from edulink.auth import Role

DEFAULT_ISSUER = "https://identity.edulink.test"
DEFAULT_AUDIENCE = "edulink"

SigningKey = ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class _KeyPair:
    kid: str
    algorithm: str
    private_key: SigningKey

    def public_jwk(self) -> dict[str, Any]:
        public_key = self.private_key.public_key()
        if self.algorithm == "EdDSA":
            jwk = OKPAlgorithm.to_jwk(public_key, as_dict=True)
        else:
            jwk = RSAAlgorithm.to_jwk(public_key, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )


def _generate(algorithm: str) -> SigningKey:
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unsupported algorithm {algorithm!r}, use EdDSA or RS256")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _compact(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """Return the first two segments of a compact JWS, joined by a dot."""
    segments = [
        _b64url(json.dumps(part, separators=(",", ":")).encode())
        for part in (header, claims)
    ]
    return ".".join(segments)


class TokenFactory:
    """Hold signing keys, publish them as a JWKS file and mint tokens.

    The JWKS file is rewritten whenever a key is added or removed. Without
    ``jwks_path`` it goes to a new temporary directory that :meth:`cleanup`
    (or leaving the ``with`` block) removes.
    """

    def __init__(
        self,
        *,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        jwks_path: str | Path | None = None,
        algorithm: str = "EdDSA",
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self._temp_dir: Path | None = None
        if jwks_path is None:
            self._temp_dir = Path(tempfile.mkdtemp(prefix="edulink-jwks-"))
            jwks_path = self._temp_dir / "jwks.json"
        self.jwks_path = Path(jwks_path)
        self._keys: dict[str, _KeyPair] = {}
        self.current_kid = self.add_key(algorithm)

    def __enter__(self) -> TokenFactory:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.cleanup()

    def cleanup(self) -> None:
        """Remove the temporary JWKS directory, if the factory created one."""
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    # Keys and the JWKS document.

    def add_key(self, algorithm: str = "EdDSA", *, kid: str | None = None) -> str:
        """Generate and publish a key without signing with it yet. Returns its kid."""
        kid = kid or f"test-{uuid.uuid4().hex[:12]}"
        self._keys[kid] = _KeyPair(kid, algorithm, _generate(algorithm))
        self.write_jwks()
        return kid

    def rotate(self, algorithm: str = "EdDSA") -> str:
        """Publish a new key and sign with it from now on. Old keys stay published."""
        self.current_kid = self.add_key(algorithm)
        return self.current_kid

    def remove_key(self, kid: str) -> None:
        """Unpublish a key. Removing the current key is rejected."""
        if kid == self.current_kid:
            raise ValueError(f"{kid} is the current signing key, rotate first")
        del self._keys[kid]
        self.write_jwks()

    @property
    def kids(self) -> list[str]:
        return list(self._keys)

    def jwks(self) -> dict[str, Any]:
        """Return the public JWKS document."""
        return {"keys": [pair.public_jwk() for pair in self._keys.values()]}

    def write_jwks(self) -> Path:
        """Write the JWKS document to :attr:`jwks_path` and return the path."""
        self.jwks_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.jwks_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.jwks()), encoding="utf-8")
        # A rename is atomic, so a verifier never reads a half-written file.
        temporary.replace(self.jwks_path)
        return self.jwks_path

    def public_key_pem(self, kid: str | None = None) -> bytes:
        """Return the PEM public key of ``kid`` (default: the current key)."""
        return self._keys[kid or self.current_kid].public_pem()

    # Tokens.

    def claims(
        self,
        role: Role | str,
        /,
        *,
        subject: str | uuid.UUID | None = None,
        org_ids: Iterable[uuid.UUID | str] = (),
        email: str | None = None,
        email_verified: bool = True,
        name: str | None = None,
        expires_in: int = 300,
        issuer: str | None = None,
        audience: str | list[str] | None = None,
        **extra_claims: Any,
    ) -> dict[str, Any]:
        """Build a claim set. Extra claims override defaults, and None removes one."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer or self.issuer,
            "aud": audience or self.audience,
            "sub": str(uuid.uuid4() if subject is None else subject),
            "iat": now,
            "exp": now + expires_in,
            "jti": uuid.uuid4().hex,
            "role": str(role),
            "org_ids": [str(org_id) for org_id in org_ids],
            "email": email,
            "email_verified": email_verified,
            "name": name,
        }
        claims.update(extra_claims)
        return {key: value for key, value in claims.items() if value is not None}

    def mint(
        self,
        role: Role | str,
        /,
        *,
        subject: str | uuid.UUID | None = None,
        org_ids: Iterable[uuid.UUID | str] = (),
        email: str | None = None,
        email_verified: bool = True,
        name: str | None = None,
        expires_in: int = 300,
        issuer: str | None = None,
        audience: str | list[str] | None = None,
        kid: str | None = None,
        **extra_claims: Any,
    ) -> str:
        """Sign a token for ``role`` with the key ``kid`` (default: the current key).

        ``subject`` defaults to a random user id. A negative ``expires_in``
        gives an expired token. Extra claims override the defaults, and
        passing None for a claim (``exp=None``) leaves it out.
        """
        claims = self.claims(
            role,
            subject=subject,
            org_ids=org_ids,
            email=email,
            email_verified=email_verified,
            name=name,
            expires_in=expires_in,
            issuer=issuer,
            audience=audience,
            **extra_claims,
        )
        return self.sign(claims, kid=kid)

    def sign(self, claims: dict[str, Any], *, kid: str | None = None) -> str:
        """Sign ``claims`` as given with the key ``kid`` (default: the current key)."""
        pair = self._keys[kid or self.current_kid]
        return jwt.encode(
            claims,
            pair.private_key,
            algorithm=pair.algorithm,
            headers={"kid": pair.kid},
        )

    def service_token(
        self, client_id: str, *, expires_in: int = 300, **extra_claims: Any
    ) -> str:
        """Sign a token for another service, whose subject is its client id."""
        return self.mint(
            Role.service,
            subject=client_id,
            email_verified=False,
            expires_in=expires_in,
            **extra_claims,
        )

    # Forged tokens that a verifier must reject.

    def forge_alg_none(self, role: Role | str = Role.student, /, **claims: Any) -> str:
        """Return an unsigned token with ``alg: none`` and the current kid."""
        header = {"alg": "none", "typ": "JWT", "kid": self.current_kid}
        return _compact(header, self.claims(role, **claims)) + "."

    def forge_hs256_with_public_key(
        self, role: Role | str = Role.student, /, **claims: Any
    ) -> str:
        """Return an HS256 token whose HMAC secret is the current public key's PEM.

        A verifier that let the token's header pick the algorithm would accept
        it, because the public key is the value it passes as the key.
        """
        header = {"alg": "HS256", "typ": "JWT", "kid": self.current_kid}
        signing_input = _compact(header, self.claims(role, **claims))
        secret = self.public_key_pem()
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64url(signature)}"

    def mint_with_unknown_key(
        self,
        role: Role | str = Role.student,
        /,
        *,
        kid: str | None = None,
        **claims: Any,
    ) -> str:
        """Sign a token with a fresh Ed25519 key that the JWKS does not contain.

        ``kid`` defaults to a new random kid. Passing a published kid gives a
        token whose signature does not match that key.
        """
        stranger = ed25519.Ed25519PrivateKey.generate()
        header_kid = kid or f"unknown-{uuid.uuid4().hex[:12]}"
        return jwt.encode(
            self.claims(role, **claims),
            stranger,
            algorithm="EdDSA",
            headers={"kid": header_kid},
        )
