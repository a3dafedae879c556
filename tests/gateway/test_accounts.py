"""Accounts: sign-up, email verification, password reset, invitations, admins."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from edulink.auth import Role
from gateway.db import db
from gateway.models import ActionToken, Invitation
from gateway.services import hash_token
from tests.gateway.conftest import unique_email

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def app(make_gateway_app):
    # The policy check is not under test here; its counters would only add up.
    return make_gateway_app(ratelimit_enabled=False)


@pytest.fixture
def http(app):
    return app.test_client()


@pytest.fixture
def outbox(app):
    return app.extensions["gateway"].outbox


def register(http, email: str, password: str = PASSWORD):
    return http.post(
        "/api/v1/accounts", json={"email": email, "password": password, "name": "Kip"}
    )


def login(http, email: str, password: str = PASSWORD):
    return http.post("/api/v1/auth/login", json={"email": email, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_register_creates_unverified_student(http):
    email = unique_email()

    response = register(http, email.upper())

    assert response.status_code == 201
    assert response.json["email"] == email
    assert response.json["role"] == "student"
    assert response.json["email_verified"] is False
    assert "password" not in response.json


def test_register_same_email_conflicts(http):
    email = unique_email()
    register(http, email)

    response = register(http, email.title())

    assert response.status_code == 409


@pytest.mark.parametrize(
    ("password", "field_detail"), [("short", "too short"), ("{email}", "is email")]
)
def test_register_rejects_weak_password(http, password, field_detail):
    email = unique_email()

    response = register(http, email, password.format(email=email))

    assert response.status_code == 422
    assert response.json["errors"][0]["detail"] == field_detail


def test_register_rejects_invalid_email(http):
    response = register(http, "not-an-email")

    assert response.status_code == 422


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/api/v1/accounts",
            {"email": "a@b.example", "password": PASSWORD, "name": "K\u0000ip"},
            "name",
        ),
        (
            "/api/v1/auth/login",
            {"email": "a\u0000@b.example", "password": PASSWORD},
            "email",
        ),
    ],
)
def test_nul_in_body_is_422(http, path, body, field):
    response = http.post(path, json=body)

    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == field


def test_verification_link_verifies_once(http, outbox):
    email = unique_email()
    register(http, email)
    token = outbox.last(email, "verify_email").context["token"]

    first = http.post("/api/v1/accounts/verify-email", json={"token": token})
    second = http.post("/api/v1/accounts/verify-email", json={"token": token})

    assert first.status_code == 200
    assert first.json["email_verified"] is True
    assert second.status_code == 400


def test_verification_link_expires(app, http, outbox):
    email = unique_email()
    register(http, email)
    token = outbox.last(email, "verify_email").context["token"]
    with app.app_context(), db.transaction() as session:
        session.execute(
            sa.update(ActionToken)
            .where(ActionToken.token_hash == hash_token(token))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )

    response = http.post("/api/v1/accounts/verify-email", json={"token": token})

    assert response.status_code == 400


def test_resend_sends_new_link(http, outbox):
    email = unique_email()
    register(http, email)
    first = outbox.last(email, "verify_email").context["token"]
    access = login(http, email).json["access_token"]

    response = http.post("/api/v1/accounts/verify-email/resend", headers=bearer(access))

    assert response.status_code == 202
    assert outbox.last(email, "verify_email").context["token"] != first


def test_only_token_hashes_are_stored(app, http, outbox):
    email = unique_email()
    register(http, email)
    token = outbox.last(email, "verify_email").context["token"]

    with app.app_context(), db.transaction() as session:
        stored = session.scalars(sa.select(ActionToken.token_hash)).all()

    assert hash_token(token) in stored
    assert token.encode() not in stored


def test_verified_email_appears_in_new_tokens(http, outbox):
    email = unique_email()
    register(http, email)
    token = outbox.last(email, "verify_email").context["token"]
    http.post("/api/v1/accounts/verify-email", json={"token": token})

    access = login(http, email).json["access_token"]
    me = http.get("/api/v1/accounts/me", headers=bearer(access))

    assert me.status_code == 200
    assert me.json["email_verified"] is True


def test_password_reset_changes_password(http, outbox):
    email = unique_email()
    register(http, email)
    session_tokens = login(http, email).json

    requested = http.post("/api/v1/accounts/password-reset", json={"email": email})
    token = outbox.last(email, "reset_password").context["token"]
    confirmed = http.post(
        "/api/v1/accounts/password-reset/confirm",
        json={"token": token, "password": "a brand new password"},
    )

    assert requested.status_code == 202
    assert confirmed.status_code == 204
    assert login(http, email).status_code == 401
    assert login(http, email, "a brand new password").status_code == 200
    refreshed = http.post(
        "/api/v1/auth/refresh", json={"refresh_token": session_tokens["refresh_token"]}
    )
    assert refreshed.status_code == 401


def test_password_reset_for_unknown_email_looks_same(http, outbox):
    email = unique_email()

    response = http.post("/api/v1/accounts/password-reset", json={"email": email})

    assert response.status_code == 202
    with pytest.raises(LookupError):
        outbox.last(email, "reset_password")


def test_password_reset_token_works_once(http, outbox):
    email = unique_email()
    register(http, email)
    http.post("/api/v1/accounts/password-reset", json={"email": email})
    token = outbox.last(email, "reset_password").context["token"]
    body = {"token": token, "password": "another new password"}

    first = http.post("/api/v1/accounts/password-reset/confirm", json=body)
    second = http.post("/api/v1/accounts/password-reset/confirm", json=body)

    assert first.status_code == 204
    assert second.status_code == 400


# Invitations.


def test_system_admin_invites_supervisor(http, outbox, tokens):
    org = uuid.uuid4()
    email = unique_email("supervisor")
    admin = bearer(tokens.mint(Role.system_admin))

    invited = http.post(
        "/api/v1/accounts/invitations",
        json={"email": email, "role": "supervisor", "org_ids": [str(org)]},
        headers=admin,
    )
    token = outbox.last(email, "invitation").context["token"]
    accepted = http.post(
        "/api/v1/accounts/invitations/accept",
        json={"token": token, "name": "Muthoni", "password": PASSWORD},
    )

    assert invited.status_code == 201
    assert accepted.status_code == 201
    assert accepted.json["role"] == "supervisor"
    assert accepted.json["org_ids"] == [str(org)]
    assert accepted.json["email_verified"] is True
    assert login(http, email).status_code == 200


def test_invitation_accepts_once(http, outbox, tokens):
    email = unique_email()
    http.post(
        "/api/v1/accounts/invitations",
        json={"email": email, "role": "support_staff"},
        headers=bearer(tokens.mint(Role.system_admin)),
    )
    token = outbox.last(email, "invitation").context["token"]
    body = {"token": token, "name": "Njeri", "password": PASSWORD}

    first = http.post("/api/v1/accounts/invitations/accept", json=body)
    second = http.post("/api/v1/accounts/invitations/accept", json=body)

    assert first.status_code == 201
    assert second.status_code == 400


def test_org_admin_invites_into_own_org(http, tokens):
    org = uuid.uuid4()
    admin = bearer(tokens.mint(Role.employer_admin, org_ids=[org]))

    response = http.post(
        "/api/v1/accounts/invitations",
        json={"email": unique_email(), "role": "supervisor", "org_ids": [str(org)]},
        headers=admin,
    )

    assert response.status_code == 201


def test_org_admin_cannot_invite_elsewhere(http, tokens):
    admin = bearer(tokens.mint(Role.employer_admin, org_ids=[uuid.uuid4()]))

    response = http.post(
        "/api/v1/accounts/invitations",
        json={
            "email": unique_email(),
            "role": "employer_admin",
            "org_ids": [str(uuid.uuid4())],
        },
        headers=admin,
    )

    assert response.status_code == 403


def test_org_admin_cannot_invite_other_roles(http, tokens):
    org = uuid.uuid4()
    admin = bearer(tokens.mint(Role.institution_admin, org_ids=[org]))

    response = http.post(
        "/api/v1/accounts/invitations",
        json={"email": unique_email(), "role": "employer_admin", "org_ids": [str(org)]},
        headers=admin,
    )

    assert response.status_code == 403


@pytest.mark.parametrize("role", ["student", "supervisor", "support_staff"])
def test_students_and_staff_cannot_invite(http, tokens, role):
    caller = bearer(tokens.mint(role, org_ids=[uuid.uuid4()]))

    response = http.post(
        "/api/v1/accounts/invitations",
        json={"email": unique_email(), "role": "support_staff"},
        headers=caller,
    )

    assert response.status_code == 403


def test_invitation_needs_org_for_org_roles(http, tokens):
    response = http.post(
        "/api/v1/accounts/invitations",
        json={"email": unique_email(), "role": "institution_admin"},
        headers=bearer(tokens.mint(Role.system_admin)),
    )

    assert response.status_code == 422


def test_new_invitation_replaces_open_one(app, http, outbox, tokens):
    email = unique_email()
    admin = bearer(tokens.mint(Role.system_admin))
    body = {"email": email, "role": "support_staff"}
    http.post("/api/v1/accounts/invitations", json=body, headers=admin)
    old_token = outbox.last(email, "invitation").context["token"]

    http.post("/api/v1/accounts/invitations", json=body, headers=admin)
    old = http.post(
        "/api/v1/accounts/invitations/accept",
        json={"token": old_token, "name": "Old", "password": PASSWORD},
    )

    assert old.status_code == 400
    with app.app_context(), db.transaction() as session:
        open_count = session.scalar(
            sa.select(sa.func.count())
            .select_from(Invitation)
            .where(Invitation.email == email, Invitation.revoked_at.is_(None))
        )
    assert open_count == 1


def test_me_needs_token(http):
    response = http.get("/api/v1/accounts/me")

    assert response.status_code == 401


# The bootstrap command.


def test_create_admin_command_creates_system_admin(app, http):
    email = unique_email("admin")

    result = app.test_cli_runner().invoke(
        args=["accounts", "create-admin", "--email", email, "--name", "Root"],
        env={"GATEWAY_ADMIN_PASSWORD": PASSWORD},
    )
    access = login(http, email).json["access_token"]
    me = http.get("/api/v1/accounts/me", headers=bearer(access))

    assert result.exit_code == 0, result.output
    assert me.json["role"] == "system_admin"


def test_create_admin_command_rejects_existing_email(app, http):
    email = unique_email()
    register(http, email)

    result = app.test_cli_runner().invoke(
        args=["accounts", "create-admin", "--email", email, "--name", "Root"],
        env={"GATEWAY_ADMIN_PASSWORD": PASSWORD},
    )

    assert result.exit_code == 1
    assert "already exists" in result.output


# Email delivery through the job queue.


def test_registration_enqueues_verification_email(make_gateway_app, gateway_database):
    from edulink.jobs.schema import install, job_table

    install(gateway_database)
    app = make_gateway_app(email_delivery="jobs", ratelimit_enabled=False)
    email = unique_email()

    response = register(app.test_client(), email)

    assert response.status_code == 201
    with app.app_context(), db.transaction() as session:
        jobs = session.execute(
            sa.select(job_table).where(job_table.c.name == "notifications.send_email")
        ).all()
    payloads = [job.payload for job in jobs if job.payload["to"] == email]
    assert len(payloads) == 1
    assert payloads[0]["template"] == "verify_email"
    assert payloads[0]["context"]["link"].endswith(payloads[0]["context"]["token"])
