"""Forged and invalid bearer tokens get 401 and change nothing in the database."""

from __future__ import annotations

import pytest

from edulink.auth import Role
from tests.students.helpers import PROBLEM_JSON, row_count


def _forged_tokens(tokens) -> dict[str, str]:
    """Authorization header values an attacker might send, by name."""
    admin = Role.system_admin
    return {
        "alg none": f"Bearer {tokens.forge_alg_none(admin)}",
        "hs256 with public key": f"Bearer {tokens.forge_hs256_with_public_key(admin)}",
        "unknown kid": f"Bearer {tokens.mint_with_unknown_key(admin)}",
        "published kid, other key": (
            f"Bearer {tokens.mint_with_unknown_key(admin, kid=tokens.current_kid)}"
        ),
        "expired": f"Bearer {tokens.mint(admin, expires_in=-600)}",
        "wrong audience": f"Bearer {tokens.mint(admin, audience='other-api')}",
        "wrong issuer": (
            f"Bearer {tokens.mint(admin, issuer='https://identity.attacker.test')}"
        ),
        "no expiry": f"Bearer {tokens.mint(admin, exp=None)}",
        "unknown role": f"Bearer {tokens.mint('superuser')}",
        "garbage": "Bearer not-a-jwt",
        "three garbage segments": "Bearer aaa.bbb.ccc",
        "missing scheme": tokens.mint(admin),
        "basic scheme": "Basic cm9vdDpyb290",
        "empty bearer": "Bearer ",
        "oversized": "Bearer " + "a" * 9000,
    }


FORGERIES = [
    "alg none",
    "hs256 with public key",
    "unknown kid",
    "published kid, other key",
    "expired",
    "wrong audience",
    "wrong issuer",
    "no expiry",
    "unknown role",
    "garbage",
    "three garbage segments",
    "missing scheme",
    "basic scheme",
    "empty bearer",
    "oversized",
]


def _assert_rejected(response) -> None:
    assert response.status_code == 401, response.get_json()
    assert response.mimetype == PROBLEM_JSON
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["request_id"]


def test_forgery_table_is_complete(tokens):
    assert sorted(_forged_tokens(tokens)) == sorted(FORGERIES)


@pytest.mark.parametrize("forgery", FORGERIES)
def test_forged_token_cannot_create_institution(client, tokens, forgery):
    header = _forged_tokens(tokens)[forgery]

    response = client.post(
        "/api/v1/institutions",
        json={"name": "Forged University"},
        headers={"Authorization": header},
    )

    _assert_rejected(response)
    assert row_count("institutions") == 0


@pytest.mark.parametrize("forgery", FORGERIES)
def test_forged_token_cannot_read_students(client, tokens, forgery):
    header = _forged_tokens(tokens)[forgery]

    response = client.get("/api/v1/students", headers={"Authorization": header})

    _assert_rejected(response)


@pytest.mark.parametrize(
    "forgery", ["alg none", "hs256 with public key", "unknown kid", "expired"]
)
def test_forged_student_token_creates_no_profile(client, tokens, forgery):
    forge = {
        "alg none": tokens.forge_alg_none,
        "hs256 with public key": tokens.forge_hs256_with_public_key,
        "unknown kid": tokens.mint_with_unknown_key,
        "expired": lambda role, **claims: tokens.mint(role, expires_in=-600, **claims),
    }[forgery]
    token = forge(Role.student, email="mallory@mail.example.com")

    response = client.post(
        "/api/v1/students/me",
        json={"full_name": "Mallory"},
        headers={"Authorization": f"Bearer {token}"},
    )

    _assert_rejected(response)
    assert row_count("students") == 0


def test_invalid_token_error_is_named(client, tokens):
    response = client.get(
        "/api/v1/students",
        headers={"Authorization": f"Bearer {tokens.forge_alg_none()}"},
    )

    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_valid_token_is_accepted(client, tokens):
    token = tokens.mint(Role.system_admin)

    response = client.get(
        "/api/v1/students", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 200


def test_token_within_leeway_is_accepted(client, tokens):
    """Clocks drift, so a token expired by a few seconds still passes."""
    token = tokens.mint(Role.system_admin, expires_in=-5)

    response = client.get(
        "/api/v1/students", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 200


def test_forged_token_on_public_route_is_401(client, tokens):
    """A bad token fails the request even where no token is needed."""
    response = client.get(
        "/api/v1/nothing", headers={"Authorization": "Bearer not-a-jwt"}
    )

    assert response.status_code == 401
