"""Through nginx: sign-in, refresh-token rotation and reuse, logout, key rotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from edulink.auth import Role, TokenVerifier
from gateway import keys
from gateway.db import db
from tests.gateway.conftest import unique_email, unique_ip
from tests.gateway.harness import client

PASSWORD = "correct horse battery"


@pytest.fixture
def account(stack) -> str:
    email = unique_email()
    response = client(unique_ip()).post(
        stack.url + "/api/v1/accounts",
        json={"email": email, "password": PASSWORD, "name": "Achieng Odhiambo"},
    )
    assert response.status_code == 201
    return email


def sign_in(stack, email: str) -> dict:
    response = client(unique_ip()).post(
        stack.url + "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    return response.json()


def refresh(stack, token: str):
    return client(unique_ip()).post(
        stack.url + "/api/v1/auth/refresh", json={"refresh_token": token}
    )


def verifier_for(stack) -> TokenVerifier:
    """A verifier configured as a service's: the JWKS comes through nginx."""
    return TokenVerifier(
        issuer="http://gateway.edulink.test",
        audience="edulink",
        jwks_url=stack.url + "/.well-known/jwks.json",
        refetch_interval_seconds=0.0,
    )


def test_login_token_verifies_at_services(stack, account):
    tokens = sign_in(stack, account)

    principal = verifier_for(stack).verify(tokens["access_token"])

    assert principal.role is Role.student
    assert principal.email == account
    assert principal.email_verified is False
    assert principal.name == "Achieng Odhiambo"
    assert 840 <= tokens["expires_in"] <= 900


def test_access_token_claims_are_complete(stack, account):
    access = sign_in(stack, account)["access_token"]

    header = jwt.get_unverified_header(access)
    claims = jwt.decode(access, options={"verify_signature": False})

    assert header["alg"] == "EdDSA"
    assert header["kid"]
    expected = {"iss", "aud", "sub", "role", "org_ids", "email", "email_verified"}
    assert expected | {"name", "iat", "exp", "jti"} == set(claims)
    assert claims["exp"] - claims["iat"] == 900


def test_access_token_passes_policy_check(stack, account):
    access = sign_in(stack, account)["access_token"]

    response = client().get(
        stack.url + "/api/v1/alerts", headers={"Authorization": f"Bearer {access}"}
    )

    assert response.status_code == 200
    assert stack.last_seen("notifications")["headers"]["X-User-Role"] == "student"


def test_refresh_rotates_token(stack, account):
    first = sign_in(stack, account)

    response = refresh(stack, first["refresh_token"])

    assert response.status_code == 200
    assert response.json()["refresh_token"] != first["refresh_token"]
    assert response.json()["access_token"] != first["access_token"]


def test_reused_refresh_token_revokes_family(stack, account):
    first = sign_in(stack, account)
    second = refresh(stack, first["refresh_token"]).json()

    reuse = refresh(stack, first["refresh_token"])
    successor = refresh(stack, second["refresh_token"])

    assert reuse.status_code == 401
    assert "already used" in reuse.json()["detail"]
    assert successor.status_code == 401


def test_reuse_leaves_other_sessions_alone(stack, account):
    stolen = sign_in(stack, account)
    other = sign_in(stack, account)
    refresh(stack, stolen["refresh_token"])
    refresh(stack, stolen["refresh_token"])

    response = refresh(stack, other["refresh_token"])

    assert response.status_code == 200


def test_logout_revokes_refresh_token(stack, account):
    tokens = sign_in(stack, account)

    logout = client(unique_ip()).post(
        stack.url + "/api/v1/auth/logout",
        json={"refresh_token": tokens["refresh_token"]},
    )

    assert logout.status_code == 204
    assert refresh(stack, tokens["refresh_token"]).status_code == 401


def test_unknown_refresh_token_is_401(stack):
    response = refresh(stack, "made-up-token")

    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"


def test_wrong_password_is_401(stack, account):
    response = client(unique_ip()).post(
        stack.url + "/api/v1/auth/login",
        json={"email": account, "password": "not the password"},
    )

    assert response.status_code == 401
    assert response.json()["detail"] == "The email or password is incorrect."


def test_key_rotation_keeps_old_tokens_valid(stack, gateway_app, account):
    old_access = sign_in(stack, account)["access_token"]
    old_kid = jwt.get_unverified_header(old_access)["kid"]
    runner = gateway_app.test_cli_runner()

    result = runner.invoke(args=["keys", "rotate"])
    gateway_app.extensions["gateway"].signer.forget()
    new_access = sign_in(stack, account)["access_token"]

    assert result.exit_code == 0, result.output
    new_kid = jwt.get_unverified_header(new_access)["kid"]
    published = client(unique_ip()).get(stack.url + "/.well-known/jwks.json").json()
    assert new_kid != old_kid
    assert {old_kid, new_kid} <= {key["kid"] for key in published["keys"]}
    verifier = verifier_for(stack)
    assert verifier.verify(old_access).email == account
    assert verifier.verify(new_access).email == account


def test_retired_key_leaves_jwks_after_expiry(stack, gateway_app, account):
    old_kid = jwt.get_unverified_header(sign_in(stack, account)["access_token"])["kid"]
    gateway_app.test_cli_runner().invoke(args=["keys", "rotate"])
    keep_for = gateway_app.extensions["gateway"].keep_retired_keys_for

    with gateway_app.app_context(), db.transaction() as session:
        pruned = keys.prune_keys(
            session,
            keep_retired_for=keep_for,
            now=datetime.now(UTC) + keep_for + timedelta(seconds=1),
        )
    # Pruning in the future deleted the key this process may still sign with.
    gateway_app.extensions["gateway"].signer.forget()

    published = client(unique_ip()).get(stack.url + "/.well-known/jwks.json").json()
    assert old_kid in pruned
    assert old_kid not in {key["kid"] for key in published["keys"]}


def test_client_credentials_through_nginx(stack, gateway_app):
    client_id = "reports-" + unique_email().split("@")[0]
    secret = (
        gateway_app.test_cli_runner()
        .invoke(args=["clients", "create", client_id])
        .output.strip()
    )

    response = client(unique_ip()).post(
        stack.url + "/api/v1/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
    )

    assert response.status_code == 200
    assert verifier_for(stack).verify(response.json()["access_token"]).is_service
