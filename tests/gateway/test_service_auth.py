"""Client credentials at the gateway, and the token provider services use."""

from __future__ import annotations

import threading
import uuid

import pytest
import requests

from edulink.auth import Role, TokenVerifier
from edulink.http import ServiceClient
from edulink.service_auth import ClientCredentialsTokenProvider, ServiceTokenError
from tests.gateway.harness import serving


@pytest.fixture(scope="module")
def app(make_gateway_app):
    return make_gateway_app(ratelimit_enabled=False, service_token_ttl=120)


@pytest.fixture(scope="module")
def app_url(app):
    with serving(app) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def service_client(app) -> tuple[str, str]:
    """A registered client id and its secret."""
    client_id = f"internships-{uuid.uuid4().hex[:8]}"
    result = app.test_cli_runner().invoke(
        args=["clients", "create", client_id, "--audience", "edulink"]
    )
    assert result.exit_code == 0, result.output
    return client_id, result.output.strip()


class CountingSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False
        self.posts = 0

    def post(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.posts += 1
        return super().post(*args, **kwargs)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def verifier(app_url: str) -> TokenVerifier:
    return TokenVerifier(
        issuer="http://gateway.edulink.test",
        audience="edulink",
        jwks_url=app_url + "/.well-known/jwks.json",
    )


def test_client_credentials_token_has_service_role(app, app_url, service_client):
    client_id, secret = service_client

    response = requests.post(
        app_url + "/api/v1/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        timeout=5,
    )
    principal = verifier(app_url).verify(response.json()["access_token"])

    assert response.status_code == 200
    assert response.json()["expires_in"] == 120
    assert "refresh_token" not in response.json()
    assert principal.role is Role.service
    assert principal.subject == client_id


def test_client_credentials_accept_form_fields(app, service_client):
    client_id, secret = service_client

    response = app.test_client().post(
        "/api/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
        },
    )

    assert response.status_code == 200


def test_wrong_secret_is_401(app, service_client):
    client_id, _ = service_client

    response = app.test_client().post(
        "/api/v1/auth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": "guess",
        },
    )

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_client"'


def test_unlisted_audience_is_422(app, service_client):
    client_id, secret = service_client

    response = app.test_client().post(
        "/api/v1/auth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "audience": "billing",
        },
    )

    assert response.status_code == 422
    assert response.json["allowed_audiences"] == ["edulink"]


def test_other_grant_type_is_400(app):
    response = app.test_client().post(
        "/api/v1/auth/token", data={"grant_type": "password"}
    )

    assert response.status_code == 400


def test_disabled_client_gets_no_token(app, service_client):
    client_id, secret = service_client
    app.test_cli_runner().invoke(args=["clients", "disable", client_id])

    response = app.test_client().post(
        "/api/v1/auth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": requests.auth._basic_auth_str(client_id, secret)},
    )

    assert response.status_code == 401


# The provider.


def test_provider_caches_token(app_url, service_client):
    session = CountingSession()
    provider = ClientCredentialsTokenProvider(
        app_url + "/api/v1/auth/token", *service_client, session=session
    )

    first, second = provider(), provider()

    assert first == second
    assert session.posts == 1


def test_provider_renews_before_expiry(app_url, service_client):
    session, clock = CountingSession(), Clock()
    provider = ClientCredentialsTokenProvider(
        app_url + "/api/v1/auth/token",
        *service_client,
        renew_before=30,
        session=session,
        clock=clock,
    )
    first = provider()

    clock.now += 89
    unchanged = provider()
    clock.now += 2
    renewed = provider()

    assert unchanged == first
    assert renewed != first
    assert session.posts == 2


def test_provider_fetches_once_for_many_threads(app_url, service_client):
    session = CountingSession()
    provider = ClientCredentialsTokenProvider(
        app_url + "/api/v1/auth/token", *service_client, session=session
    )
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(provider())) for _ in range(8)
    ]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(results)) == 1
    assert session.posts == 1


def test_provider_keeps_valid_token_when_renewal_fails(app_url, service_client):
    clock = Clock()
    provider = ClientCredentialsTokenProvider(
        app_url + "/api/v1/auth/token", *service_client, renew_before=30, clock=clock
    )
    first = provider()
    provider.token_url = app_url + "/nowhere"

    clock.now += 100
    kept = provider()
    clock.now += 30

    assert kept == first
    with pytest.raises(ServiceTokenError):
        provider()


def test_provider_with_bad_secret_raises(app_url, service_client):
    client_id, _ = service_client
    provider = ClientCredentialsTokenProvider(
        app_url + "/api/v1/auth/token", client_id, "wrong"
    )

    with pytest.raises(ServiceTokenError, match="returned 401"):
        provider()


def test_service_client_sends_provider_token(app_url, service_client):
    provider = ClientCredentialsTokenProvider(
        app_url + "/api/v1/auth/token", *service_client
    )

    with ServiceClient(app_url, name="gateway", token_provider=provider) as http:
        # The policy check reports the caller it authenticated.
        response = http.request("GET", "/_policy")

    assert response.headers["X-User-Role"] == "service"
    assert response.headers["X-User-Id"] == service_client[0]
