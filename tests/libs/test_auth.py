"""Token verification, JWKS caching over real HTTP, and the Flask integration."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from flask import Flask, jsonify
from werkzeug.wrappers import Response

from edulink.auth import (
    Principal,
    Role,
    TokenVerifier,
    current_principal,
    init_auth,
    parse_jwks,
    require_principal,
    verifier_from_settings,
)
from edulink.errors import ServiceUnavailable, Unauthorized, register_error_handlers
from edulink.logs import actor_var, init_request_ids
from edulink.settings import PlatformSettings
from edulink.testing.tokens import TokenFactory
from tests.libs.local_server import closed_port, running_server

ISSUER = "https://identity.edulink.test"
AUDIENCE = "edulink-tests"


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> TokenFactory:
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    factory = TokenFactory(issuer=ISSUER, audience=AUDIENCE, jwks_path=path)
    factory.add_key("RS256", kid="rsa-key")
    return factory


@pytest.fixture(scope="module")
def verifier(tokens: TokenFactory) -> TokenVerifier:
    return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_file=tokens.jwks_path)


def rejection(verifier: TokenVerifier, token: str) -> Unauthorized:
    with pytest.raises(Unauthorized) as caught:
        verifier.verify(token)
    return caught.value


# Accepted tokens.


def test_verify_eddsa_token_returns_principal(
    tokens: TokenFactory, verifier: TokenVerifier
) -> None:
    user_id = uuid.uuid4()
    org_id = uuid.uuid4()
    token = tokens.mint(
        Role.institution_admin,
        subject=user_id,
        org_ids=[org_id],
        email="ada@uni.example",
        name="Ada Lovelace",
    )

    principal = verifier.verify(token)

    assert principal.user_id == user_id
    assert principal.role is Role.institution_admin
    assert principal.org_ids == frozenset({org_id})
    assert principal.email == "ada@uni.example"
    assert principal.email_verified is True
    assert principal.name == "Ada Lovelace"
    assert principal.is_system_admin is False


def test_verify_rs256_token_returns_principal(
    tokens: TokenFactory, verifier: TokenVerifier
) -> None:
    token = tokens.mint(Role.system_admin, kid="rsa-key")

    principal = verifier.verify(token)

    assert principal.is_system_admin is True


def test_verify_service_token_has_no_user_id(
    tokens: TokenFactory, verifier: TokenVerifier
) -> None:
    principal = verifier.verify(tokens.service_token("internships"))

    assert principal.subject == "internships"
    assert principal.is_service is True
    assert principal.user_id is None
    assert principal.org_ids == frozenset()


def test_verify_accepts_expiry_within_leeway(
    tokens: TokenFactory, verifier: TokenVerifier
) -> None:
    principal = verifier.verify(tokens.mint(Role.student, expires_in=-5))

    assert principal.role is Role.student


def test_verify_accepts_audience_list(
    tokens: TokenFactory, verifier: TokenVerifier
) -> None:
    token = tokens.mint(Role.student, audience=["gateway", AUDIENCE])

    assert verifier.verify(token).role is Role.student


# Rejected tokens: every case is a 401 with an invalid_token challenge.

REJECTIONS: list[tuple[str, Callable[[TokenFactory], str], str]] = [
    ("alg none", lambda f: f.forge_alg_none(), "algorithm none"),
    (
        "hs256 with public key",
        lambda f: f.forge_hs256_with_public_key(),
        "algorithm HS256",
    ),
    ("unknown kid", lambda f: f.mint_with_unknown_key(), "unknown key"),
    (
        "wrong key for kid",
        lambda f: f.mint_with_unknown_key(kid=f.current_kid),
        "signature is invalid",
    ),
    ("wrong issuer", lambda f: f.mint(Role.student, issuer="https://evil"), "issuer"),
    ("wrong audience", lambda f: f.mint(Role.student, audience="other"), "audience"),
    ("expired", lambda f: f.mint(Role.student, expires_in=-120), "expired"),
    (
        "not yet valid",
        lambda f: f.mint(Role.student, nbf=int(time.time()) + 600),
        "not valid yet",
    ),
    (
        "issued in future",
        lambda f: f.mint(Role.student, iat=int(time.time()) + 600),
        "not valid yet",
    ),
    ("unknown role", lambda f: f.mint("dean"), "role dean is unknown"),
    (
        "subject not uuid",
        lambda f: f.mint(Role.student, subject="ada"),
        "subject (sub) is not a user id",
    ),
    (
        "org ids not list",
        lambda f: f.sign({**f.claims(Role.employer_admin), "org_ids": "x"}),
        "org_ids claim is not a list",
    ),
    (
        "org id invalid",
        lambda f: f.mint(Role.employer_admin, org_ids=["not-a-uuid"]),
        "org_ids claim contains an invalid id",
    ),
    (
        "email not string",
        lambda f: f.sign({**f.claims(Role.student), "email": 42}),
        "email claim is not a string",
    ),
    (
        "empty service subject",
        lambda f: f.mint(Role.service, subject=""),
        "subject (sub) is empty",
    ),
    (
        "email verified not bool",
        lambda f: f.mint(Role.student, email_verified="yes"),
        "email_verified claim is not a boolean",
    ),
    ("not a jwt", lambda f: "not-a-token", "not a well-formed JWT"),
    (
        "too long",
        lambda f: f.mint(Role.student, padding="x" * 9000),
        "longer than 8192",
    ),
]


@pytest.mark.parametrize(
    ("builder", "detail"),
    [pytest.param(builder, detail, id=name) for name, builder, detail in REJECTIONS],
)
def test_verify_rejects_bad_token(
    tokens: TokenFactory,
    verifier: TokenVerifier,
    builder: Callable[[TokenFactory], str],
    detail: str,
) -> None:
    error = rejection(verifier, builder(tokens))

    assert error.status == 401
    assert error.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert detail in error.detail


@pytest.mark.parametrize("claim", ["iss", "aud", "sub", "iat", "exp", "role"])
def test_verify_rejects_missing_claim(
    tokens: TokenFactory, verifier: TokenVerifier, claim: str
) -> None:
    error = rejection(verifier, tokens.mint(Role.student, **{claim: None}))

    assert error.detail == f"The access token has no '{claim}' claim."


def test_verify_rejects_token_without_kid(
    tokens: TokenFactory, verifier: TokenVerifier
) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    token = jwt.encode(tokens.claims(Role.student), key, algorithm="EdDSA")

    error = rejection(verifier, token)

    assert "no key id" in error.detail


def test_verify_rejects_alg_not_matching_key(
    tokens: TokenFactory, verifier: TokenVerifier
) -> None:
    # An EdDSA signature presented under the RSA key's kid.
    token = tokens.mint_with_unknown_key(kid="rsa-key")

    error = rejection(verifier, token)

    assert "does not match its key" in error.detail


def test_principal_rejects_non_uuid_user() -> None:
    with pytest.raises(ValueError, match="badly formed"):
        Principal(subject="ada", role=Role.student)


def test_parse_jwks_skips_unusable_keys(tokens: TokenFactory) -> None:
    published = tokens.jwks()["keys"]
    document = {
        "keys": [
            {"kty": "oct", "kid": "shared", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ"},
            {**published[0], "kid": "for-encryption", "use": "enc"},
            {**published[0], "kid": None},
            "not a key",
            *published,
        ]
    }

    keys = parse_jwks(document, ["EdDSA", "RS256"])

    assert sorted(keys) == sorted(key["kid"] for key in published)


def test_token_factory_removes_key_from_jwks(tmp_path: Path) -> None:
    factory = TokenFactory(jwks_path=tmp_path / "jwks.json")
    old_kid = factory.current_kid
    new_kid = factory.rotate()

    factory.remove_key(old_kid)

    published = json.loads(factory.jwks_path.read_text())
    assert [key["kid"] for key in published["keys"]] == [new_kid]


def test_token_factory_cleanup_removes_temp_dir() -> None:
    with TokenFactory() as factory:
        path = factory.jwks_path
        assert path.exists()

    assert not path.parent.exists()


# JWKS over HTTP: caching, rotation, refetch limits.


class JwksServer:
    """WSGI app serving a factory's JWKS and counting the requests it gets."""

    def __init__(self, factory: TokenFactory) -> None:
        self.factory = factory
        self.hits = 0
        self.failing = False
        self.delay = 0.0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self._lock:
            self.hits += 1
        time.sleep(self.delay)
        if self.failing:
            response = Response("down", status=500)
        else:
            body = json.dumps(self.factory.jwks())
            response = Response(body, mimetype="application/json")
        return response(environ, start_response)


@pytest.fixture
def http_tokens(tmp_path: Path) -> TokenFactory:
    return TokenFactory(issuer=ISSUER, audience=AUDIENCE, jwks_path=tmp_path / "j.json")


@pytest.fixture
def jwks_server(http_tokens: TokenFactory) -> Iterator[tuple[JwksServer, str]]:
    app = JwksServer(http_tokens)
    with running_server(app) as base_url:
        yield app, f"{base_url}/.well-known/jwks.json"


def http_verifier(url: str, **options: float) -> TokenVerifier:
    return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_url=url, **options)


def test_jwks_keys_cached_between_tokens(
    http_tokens: TokenFactory, jwks_server: tuple[JwksServer, str]
) -> None:
    server, url = jwks_server
    verifier = http_verifier(url)

    for _ in range(5):
        verifier.verify(http_tokens.mint(Role.student))

    assert server.hits == 1


def test_jwks_rotation_picks_up_new_kid(
    http_tokens: TokenFactory, jwks_server: tuple[JwksServer, str]
) -> None:
    server, url = jwks_server
    verifier = http_verifier(url, refetch_interval_seconds=0.2)
    verifier.verify(http_tokens.mint(Role.student))

    http_tokens.rotate()
    time.sleep(0.25)
    principal = verifier.verify(http_tokens.mint(Role.supervisor))

    assert principal.role is Role.supervisor
    assert server.hits == 2


def test_jwks_unknown_kid_flood_refetches_once(
    http_tokens: TokenFactory, jwks_server: tuple[JwksServer, str]
) -> None:
    server, url = jwks_server
    verifier = http_verifier(url, refetch_interval_seconds=0.2)
    verifier.verify(http_tokens.mint(Role.student))
    time.sleep(0.25)

    for _ in range(50):
        rejection(verifier, http_tokens.mint_with_unknown_key())

    assert server.hits == 2


def test_jwks_unknown_kid_flood_from_threads(
    http_tokens: TokenFactory, jwks_server: tuple[JwksServer, str]
) -> None:
    server, url = jwks_server
    verifier = http_verifier(url, refetch_interval_seconds=60)
    forged = [http_tokens.mint_with_unknown_key() for _ in range(40)]
    rejected: list[str] = []

    def attack(token: str) -> None:
        try:
            verifier.verify(token)
        except Unauthorized:
            rejected.append(token)

    threads = [threading.Thread(target=attack, args=(token,)) for token in forged]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(rejected) == 40
    assert server.hits == 1


def test_jwks_reloaded_after_ttl(
    http_tokens: TokenFactory, jwks_server: tuple[JwksServer, str]
) -> None:
    server, url = jwks_server
    verifier = http_verifier(url, cache_ttl_seconds=0.2, refetch_interval_seconds=0)
    verifier.verify(http_tokens.mint(Role.student))

    time.sleep(0.25)
    verifier.verify(http_tokens.mint(Role.student))

    assert server.hits == 2


def test_jwks_retired_key_rejected_after_ttl(
    http_tokens: TokenFactory, jwks_server: tuple[JwksServer, str]
) -> None:
    _server, url = jwks_server
    verifier = http_verifier(url, cache_ttl_seconds=0.2, refetch_interval_seconds=0)
    old_token = http_tokens.mint(Role.student)
    verifier.verify(old_token)

    old_kid = http_tokens.current_kid
    http_tokens.rotate()
    http_tokens.remove_key(old_kid)
    time.sleep(0.25)

    assert "unknown key" in rejection(verifier, old_token).detail


def test_jwks_failure_keeps_stale_keys(
    http_tokens: TokenFactory, jwks_server: tuple[JwksServer, str]
) -> None:
    server, url = jwks_server
    verifier = http_verifier(url, cache_ttl_seconds=0.2, refetch_interval_seconds=0)
    verifier.verify(http_tokens.mint(Role.student))

    server.failing = True
    time.sleep(0.25)
    principal = verifier.verify(http_tokens.mint(Role.student))

    assert principal.role is Role.student
    assert server.hits == 2


def test_jwks_slow_reload_serves_stale_key(
    http_tokens: TokenFactory, jwks_server: tuple[JwksServer, str]
) -> None:
    server, url = jwks_server
    verifier = http_verifier(url, cache_ttl_seconds=0.2, refetch_interval_seconds=0.2)
    token = http_tokens.mint(Role.student)
    verifier.verify(token)
    time.sleep(0.25)

    server.delay = 0.5
    reloader = threading.Thread(target=verifier.verify, args=(token,))
    reloader.start()
    time.sleep(0.1)
    started = time.perf_counter()
    verifier.verify(token)
    elapsed = time.perf_counter() - started
    reloader.join()

    assert elapsed < 0.2
    assert server.hits == 2


def test_jwks_unavailable_at_start_is_503(http_tokens: TokenFactory) -> None:
    url = f"http://127.0.0.1:{closed_port()}/jwks.json"
    verifier = http_verifier(url, connect_timeout=0.5)

    with pytest.raises(ServiceUnavailable) as caught:
        verifier.verify(http_tokens.mint(Role.student))

    assert caught.value.headers["Retry-After"] == "30"


def test_jwks_server_error_is_503(
    http_tokens: TokenFactory, jwks_server: tuple[JwksServer, str]
) -> None:
    server, url = jwks_server
    server.failing = True
    verifier = http_verifier(url, refetch_interval_seconds=60)

    for _ in range(3):
        with pytest.raises(ServiceUnavailable):
            verifier.verify(http_tokens.mint(Role.student))

    assert server.hits == 1


# Flask integration.


@pytest.fixture(scope="module")
def app(verifier: TokenVerifier) -> Flask:
    app = Flask(__name__)
    init_request_ids(app)
    init_auth(app, verifier)
    register_error_handlers(app)

    @app.get("/open")
    def open_view() -> Any:
        principal = current_principal()
        return jsonify(subject=principal.subject if principal else None)

    @app.get("/me")
    def me_view() -> Any:
        principal = require_principal()
        return jsonify(subject=principal.subject, actor=actor_var.get())

    @app.get("/admin")
    def admin_view() -> Any:
        require_principal(Role.system_admin, Role.support_staff)
        return jsonify(ok=True)

    return app


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_anonymous_request_reaches_open_view(app: Flask) -> None:
    response = app.test_client().get("/open")

    assert response.status_code == 200
    assert response.json == {"subject": None}


def test_missing_token_is_401_with_challenge(app: Flask) -> None:
    response = app.test_client().get("/me")

    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_invalid_token_is_401_even_when_open(app: Flask, tokens: TokenFactory) -> None:
    response = app.test_client().get("/open", headers=bearer(tokens.forge_alg_none()))

    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert "algorithm none" in response.json["detail"]


@pytest.mark.parametrize(
    "header", ["Basic YWRhOnB3", "Bearer", "Bearer a b", "Token abc", "bearer  "]
)
def test_malformed_header_is_401(app: Flask, header: str) -> None:
    response = app.test_client().get("/open", headers={"Authorization": header})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_request"'


def test_valid_token_binds_principal_and_actor(
    app: Flask, tokens: TokenFactory
) -> None:
    user_id = str(uuid.uuid4())

    response = app.test_client().get(
        "/me", headers=bearer(tokens.mint(Role.student, subject=user_id))
    )

    assert response.json == {"subject": user_id, "actor": user_id}
    assert actor_var.get() is None


def test_bearer_scheme_is_case_insensitive(app: Flask, tokens: TokenFactory) -> None:
    token = tokens.mint(Role.student)

    response = app.test_client().get(
        "/me", headers={"Authorization": f"bearer {token}"}
    )

    assert response.status_code == 200


def test_wrong_role_is_403_problem(app: Flask, tokens: TokenFactory) -> None:
    response = app.test_client().get(
        "/admin", headers=bearer(tokens.mint(Role.student))
    )

    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    assert response.json["allowed_roles"] == ["support_staff", "system_admin"]


def test_allowed_role_passes(app: Flask, tokens: TokenFactory) -> None:
    token = tokens.mint(Role.support_staff)

    response = app.test_client().get("/admin", headers=bearer(token))

    assert response.status_code == 200


def test_current_principal_outside_request_is_none() -> None:
    assert current_principal() is None


def test_verifier_from_settings_reads_jwks_file(tokens: TokenFactory) -> None:
    settings = PlatformSettings(
        database_url="postgresql://root@127.0.0.1/unused",
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwks_file=tokens.jwks_path,
        cursor_secret="0123456789abcdef0123",
    )

    principal = verifier_from_settings(settings).verify(tokens.mint(Role.student))

    assert principal.role is Role.student
