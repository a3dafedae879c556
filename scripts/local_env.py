"""Development settings for local runs: service discovery, secrets and keys.

The cursor secret and the Ed25519 signing key are generated once under
``var/dev/`` (gitignored) and reused by later runs, so a token minted yesterday
still verifies today. Run as a script, it writes them and ``var/dev/local.env``
and prints the file's path.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import sys
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

ROOT = Path(__file__).resolve().parent.parent
DEV_DIR = ROOT / "var" / "dev"

# Fixed local ports; a service missing here gets the next port from 8005 up.
KNOWN_PORTS = {
    "gateway": 8000,
    "students": 8001,
    "internships": 8002,
    "notifications": 8003,
    "documents": 8004,
}
FIRST_EXTRA_PORT = 8005

DEFAULTS = {
    "DATABASE_URL": "postgresql://localhost/edulink",
    "JWT_ISSUER": "http://127.0.0.1:8080",
    "JWT_AUDIENCE": "edulink",
    "LOG_LEVEL": "INFO",
    # Base of the links and QR codes in documents: the nginx gateway.
    "PUBLIC_BASE_URL": "http://127.0.0.1:8080",
    # The notifications service mails to the SMTP sink that `make up` starts.
    "EMAIL_BACKEND": "smtp",
    "SMTP_HOST": "127.0.0.1",
    "SMTP_PORT": "1025",
    # Real-time events stay in the notifications process unless `make up`
    # starts the development Pusher server and switches this to "pusher".
    "REALTIME_BACKEND": "memory",
}
SERVICE_TOKEN_LIFETIME = timedelta(days=30)


@dataclass(frozen=True)
class Service:
    """A deployable app found in the checkout: a service or the gateway app."""

    name: str
    port: int

    @property
    def app_factory(self) -> str:
        return f"{self.name}.app:create_app"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class DevSecrets:
    """Paths and values of the local development secrets."""

    cursor_secret: str
    signing_key: Ed25519PrivateKey
    key_id: str
    jwks_file: Path


def discover_services(root: Path = ROOT) -> list[Service]:
    """Find the apps that exist: ``services/<name>/<name>/app.py`` and the gateway.

    Services come first in name order, the gateway app last.
    """
    names = []
    services_dir = root / "services"
    if services_dir.is_dir():
        names = sorted(
            entry.name
            for entry in services_dir.iterdir()
            if (entry / entry.name / "app.py").is_file()
        )
    if (root / "gateway" / "gateway" / "app.py").is_file():
        names.append("gateway")

    used_ports = set(KNOWN_PORTS.values())
    next_port = FIRST_EXTRA_PORT
    found = []
    for name in names:
        port = KNOWN_PORTS.get(name)
        if port is None:
            while next_port in used_ports:
                next_port += 1
            port = next_port
            used_ports.add(port)
        found.append(Service(name=name, port=port))
    return found


def _write_new_file(path: Path, content: bytes) -> None:
    """Write ``content`` to a new file readable by its owner only."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)


def _read_or_create(path: Path, make: bytes) -> bytes:
    """Return the file's bytes, writing ``make`` first if the file is missing."""
    with contextlib.suppress(FileExistsError):
        _write_new_file(path, make)
    return path.read_bytes()


def key_thumbprint(public_key: Ed25519PublicKey) -> str:
    """Return the RFC 7638 JWK thumbprint (SHA-256, base64url) of an OKP key."""
    raw = public_key.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    canonical = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":")
    )
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def ensure_dev_secrets(dev_dir: Path = DEV_DIR) -> DevSecrets:
    """Create the cursor secret, signing key and JWKS file once, then reuse them."""
    dev_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    cursor_secret = _read_or_create(
        dev_dir / "cursor_secret", secrets.token_urlsafe(32).encode()
    )
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_pem = _read_or_create(dev_dir / "signing_key.pem", pem)
    signing_key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(signing_key, Ed25519PrivateKey):
        raise SystemExit(f"{dev_dir / 'signing_key.pem'} is not an Ed25519 key")

    key_id = key_thumbprint(signing_key.public_key())
    jwk = jwt.algorithms.OKPAlgorithm.to_jwk(signing_key.public_key(), as_dict=True)
    jwk.update(kid=key_id, alg="EdDSA", use="sig")
    jwks_file = dev_dir / "jwks.json"
    # Replaced atomically, because running apps may read it at any time.
    partial = dev_dir / f"jwks.json.{os.getpid()}"
    partial.write_text(json.dumps({"keys": [jwk]}, indent=2) + "\n")
    partial.replace(jwks_file)
    return DevSecrets(
        cursor_secret=cursor_secret.decode().strip(),
        signing_key=signing_key,
        key_id=key_id,
        jwks_file=jwks_file,
    )


def mint_token(
    dev: DevSecrets,
    *,
    issuer: str,
    audience: str,
    role: str,
    subject: str,
    org_ids: Iterable[str] = (),
    email: str | None = None,
    lifetime: timedelta = timedelta(hours=1),
) -> str:
    """Sign an access token with the development key (EdDSA)."""
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "role": role,
        "org_ids": sorted(str(uuid.UUID(org)) for org in org_ids),
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
    }
    if email is not None:
        claims.update(email=email, email_verified=True)
    return jwt.encode(
        claims, dev.signing_key, algorithm="EdDSA", headers={"kid": dev.key_id}
    )


def local_environment(
    base: Mapping[str, str] | None = None, dev_dir: Path = DEV_DIR
) -> dict[str, str]:
    """Return the environment for local runs: defaults, dev secrets, then ``base``.

    Variables already set in ``base`` (default: ``os.environ``) win, so
    ``DATABASE_URL=... make up`` works as expected. When the gateway app
    exists, services fetch keys from its JWKS endpoint, which publishes the
    development key beside the gateway's own (``JWKS_EXTRA_FILE``). Without
    the gateway they read the development JWKS file.
    """
    base = dict(os.environ if base is None else base)
    dev = ensure_dev_secrets(dev_dir)
    services = discover_services()
    env = dict(DEFAULTS)
    env["CURSOR_SECRET"] = dev.cursor_secret
    env["JWKS_EXTRA_FILE"] = str(dev.jwks_file)
    gateway = next((s for s in services if s.name == "gateway"), None)
    if "JWKS_URL" not in base and "JWKS_FILE" not in base:
        if gateway is not None:
            env["JWKS_URL"] = f"{gateway.url}/.well-known/jwks.json"
        else:
            env["JWKS_FILE"] = str(dev.jwks_file)
    # Planned services get a URL too, so a service that calls one can start.
    ports = {**KNOWN_PORTS, **{service.name: service.port for service in services}}
    for name, port in ports.items():
        env[f"{name.upper()}_URL"] = f"http://127.0.0.1:{port}"
    env.update(base)
    if "SERVICE_TOKEN" not in base:
        env["SERVICE_TOKEN"] = mint_token(
            dev,
            issuer=env["JWT_ISSUER"],
            audience=env["JWT_AUDIENCE"],
            role="service",
            subject="service:local",
            lifetime=SERVICE_TOKEN_LIFETIME,
        )
    return env


def write_env_file(env: Mapping[str, str], path: Path = DEV_DIR / "local.env") -> Path:
    """Write the Edulink variables of ``env`` as ``NAME=value`` lines (mode 0600).

    The file works with ``set -a; . var/dev/local.env`` and with
    ``docker compose --env-file``.
    """
    names = [*DEFAULTS, "CURSOR_SECRET", "JWKS_FILE", "JWKS_URL", "JWKS_EXTRA_FILE"]
    names += ["SERVICE_TOKEN", *(f"{name.upper()}_URL" for name in KNOWN_PORTS)]
    names += [f"{service.name.upper()}_URL" for service in discover_services()]
    lines = [f"{name}={env[name]}" for name in dict.fromkeys(names) if name in env]
    path.unlink(missing_ok=True)
    _write_new_file(path, ("\n".join(lines) + "\n").encode())
    return path


def main() -> int:
    path = write_env_file(local_environment())
    print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
