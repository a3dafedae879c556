"""Through nginx: every forged or stale token gets 401 and reaches no service."""

from __future__ import annotations

import pytest

from edulink.auth import Role
from tests.gateway.conftest import unique_ip
from tests.gateway.harness import client

FORGERIES = {
    "alg none": lambda tokens: tokens.forge_alg_none(Role.system_admin),
    "hs256 with public key": lambda tokens: tokens.forge_hs256_with_public_key(
        Role.system_admin
    ),
    "unknown kid": lambda tokens: tokens.mint_with_unknown_key(Role.system_admin),
    "known kid, other key": lambda tokens: tokens.mint_with_unknown_key(
        Role.system_admin, kid=tokens.current_kid
    ),
    "expired": lambda tokens: tokens.mint(Role.student, expires_in=-300),
    "wrong audience": lambda tokens: tokens.mint(Role.student, audience="other"),
    "wrong issuer": lambda tokens: tokens.mint(Role.student, issuer="https://evil"),
    "not a jwt": lambda tokens: "not-a-token",
}


@pytest.mark.parametrize("name", list(FORGERIES))
def test_forged_token_is_rejected_401(stack, tokens, name):
    before = len(stack.stubs["internships"].seen)
    token = FORGERIES[name](tokens)

    response = client(unique_ip()).post(
        stack.url + "/api/v1/applications",
        json={"opportunity_id": "x"},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["detail"]
    assert len(stack.stubs["internships"].seen) == before


def test_malformed_authorization_header_is_401(stack):
    response = client(unique_ip()).get(
        stack.url + "/api/v1/alerts", headers={"Authorization": "Basic abc"}
    )

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_request"'


def test_valid_token_passes(stack, tokens):
    response = client().get(
        stack.url + "/api/v1/alerts",
        headers={"Authorization": f"Bearer {tokens.mint(Role.student)}"},
    )

    assert response.status_code == 200
