"""Through nginx: each policy's limit, its headers, and the store's failure modes.

The module's gateway app runs with the small limits of LIMITS_UNDER_TEST.
Each test counts as its own client address or user, so tests share no
counter.
"""

from __future__ import annotations

import logging
import uuid

import pytest

from edulink.auth import Role
from tests.gateway.conftest import LIMITS_UNDER_TEST, unique_email, unique_ip
from tests.gateway.harness import client, free_port, nginx_stack

PASSWORD = "correct horse battery"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_rate_limited(response, limit: int) -> None:
    assert response.status_code == 429
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["type"].endswith("/rate-limited")
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["RateLimit-Limit"] == str(limit)
    assert response.headers["RateLimit-Remaining"] == "0"
    assert int(response.headers["RateLimit-Reset"]) >= 1


def test_anonymous_limit_per_ip(stack):
    session = client(unique_ip())

    allowed = [session.get(stack.url + "/api/v1/opportunities") for _ in range(5)]
    rejected = session.get(stack.url + "/api/v1/opportunities")

    assert [response.status_code for response in allowed] == [200] * 5
    assert_rate_limited(rejected, 5)


def test_other_ip_keeps_its_own_allowance(stack):
    first = client(unique_ip())
    for _ in range(6):
        first.get(stack.url + "/api/v1/opportunities")

    response = client(unique_ip()).get(stack.url + "/api/v1/opportunities")

    assert response.status_code == 200


def test_allowed_responses_count_down(stack):
    session = client(unique_ip())

    responses = [session.get(stack.url + "/api/v1/alerts") for _ in range(3)]

    remaining = [response.headers["RateLimit-Remaining"] for response in responses]
    assert remaining == ["4", "3", "2"]
    assert responses[0].headers["RateLimit-Limit"] == "5"
    assert responses[0].headers["RateLimit-Policy"] == "5;w=3600"
    assert 0 < int(responses[0].headers["RateLimit-Reset"]) <= 3600


def test_rejected_request_never_reaches_service(stack):
    session = client(unique_ip())
    for _ in range(5):
        session.get(stack.url + "/api/v1/alerts")
    before = len(stack.stubs["notifications"].seen)

    session.get(stack.url + "/api/v1/alerts")

    assert len(stack.stubs["notifications"].seen) == before


def test_authenticated_limit_per_user(stack, tokens):
    user = bearer(tokens.mint(Role.student))
    session = client()

    statuses = [
        session.get(stack.url + "/api/v1/opportunities", headers=user).status_code
        for _ in range(8)
    ]
    rejected = session.get(stack.url + "/api/v1/opportunities", headers=user)
    other = session.get(
        stack.url + "/api/v1/opportunities", headers=bearer(tokens.mint(Role.student))
    )

    assert statuses == [200] * 8
    assert_rate_limited(rejected, 8)
    assert other.status_code == 200


def test_applications_burst_limit(stack, tokens):
    student = bearer(tokens.mint(Role.student))
    session = client()

    created = [
        session.post(stack.url + "/api/v1/applications", json={}, headers=student)
        for _ in range(2)
    ]
    rejected = session.post(
        stack.url + "/api/v1/applications", json={}, headers=student
    )
    listing = session.get(stack.url + "/api/v1/applications", headers=student)

    assert [response.status_code for response in created] == [201, 201]
    assert_rate_limited(rejected, 2)
    assert listing.status_code == 200


def test_documents_sustained_limit_stacks(stack, tokens):
    user = bearer(tokens.mint(Role.student))
    session = client()

    created = [
        session.post(stack.url + "/api/v1/documents", json={}, headers=user)
        for _ in range(3)
    ]
    rejected = session.post(stack.url + "/api/v1/documents", json={}, headers=user)

    assert [response.status_code for response in created] == [201] * 3
    assert_rate_limited(rejected, 3)
    assert int(rejected.headers["Retry-After"]) > 60


def test_support_tickets_limit_per_ip(stack):
    session = client(unique_ip())

    created = [
        session.post(stack.url + "/api/v1/support/tickets", json={}) for _ in range(2)
    ]
    rejected = session.post(stack.url + "/api/v1/support/tickets", json={})

    assert [response.status_code for response in created] == [201, 201]
    assert_rate_limited(rejected, 2)


def test_registration_limit_per_ip(stack):
    session = client(unique_ip())

    def register():
        return session.post(
            stack.url + "/api/v1/accounts",
            json={"email": unique_email(), "password": PASSWORD, "name": "Wanjiru"},
        )

    created = [register() for _ in range(2)]
    rejected = register()

    assert [response.status_code for response in created] == [201, 201]
    assert_rate_limited(rejected, 2)


def test_password_reset_limit_per_ip(stack):
    session = client(unique_ip())

    def request_reset():
        return session.post(
            stack.url + "/api/v1/accounts/password-reset",
            json={"email": unique_email()},
        )

    accepted = [request_reset() for _ in range(2)]

    assert [response.status_code for response in accepted] == [202, 202]
    assert_rate_limited(request_reset(), 2)


def register_account(stack, email: str) -> None:
    response = client(unique_ip()).post(
        stack.url + "/api/v1/accounts",
        json={"email": email, "password": PASSWORD, "name": "Otieno"},
    )
    assert response.status_code == 201


def login(session, stack, email: str, password: str):
    return session.post(
        stack.url + "/api/v1/auth/login", json={"email": email, "password": password}
    )


def test_login_limit_per_ip(stack):
    session = client(unique_ip())

    attempts = [
        login(session, stack, unique_email(), "wrong password!") for _ in range(3)
    ]
    rejected = login(session, stack, unique_email(), "wrong password!")

    assert [response.status_code for response in attempts] == [401] * 3
    assert_rate_limited(rejected, 3)


def test_failed_logins_lock_account(stack):
    email = unique_email("locked")
    register_account(stack, email)

    failures = [
        login(client(unique_ip()), stack, email, "wrong password!") for _ in range(3)
    ]
    locked = login(client(unique_ip()), stack, email, PASSWORD)

    assert [response.status_code for response in failures] == [401] * 3
    assert locked.status_code == 429
    assert locked.json()["type"].endswith("/rate-limited")
    assert int(locked.headers["Retry-After"]) > 60


def test_lockout_spares_other_accounts(stack):
    locked, spared = unique_email("locked"), unique_email("spared")
    register_account(stack, locked)
    register_account(stack, spared)
    for _ in range(4):
        login(client(unique_ip()), stack, locked, "wrong password!")

    response = login(client(unique_ip()), stack, spared, PASSWORD)

    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"


def test_correct_logins_do_not_lock(stack):
    email = unique_email()
    register_account(stack, email)

    statuses = [
        login(client(unique_ip()), stack, email, PASSWORD).status_code for _ in range(4)
    ]

    assert statuses == [200] * 4


# When the counter store fails.


@pytest.fixture(scope="module")
def broken_store_stacks(make_gateway_app, tmp_path_factory):
    """nginx stacks whose gateway counts in a database that refuses connections."""
    uri = f"postgresql+edulink://root@127.0.0.1:{free_port()}/nothing"
    stacks = {}
    contexts = []
    apps = []
    for mode in ("open", "closed"):
        app = make_gateway_app(
            ratelimit_overrides=LIMITS_UNDER_TEST,
            ratelimit_storage_uri=uri,
            ratelimit_fail_mode=mode,
            ratelimit_storage_timeout=0.3,
        )
        apps.append(app)
        context = nginx_stack(app, tmp_path_factory.mktemp(f"store-{mode}"))
        stacks[mode] = context.__enter__()
        contexts.append(context)
    yield stacks
    for context in reversed(contexts):
        context.__exit__(None, None, None)
    for app in apps:
        # Stops the pool's background reconnection attempts.
        app.extensions["gateway.limiter"].storage.close()


def test_fail_open_admits_and_counts_in_memory(broken_store_stacks, caplog):
    stack = broken_store_stacks["open"]
    session = client(unique_ip())

    with caplog.at_level(logging.WARNING, logger="flask-limiter"):
        allowed = [session.get(stack.url + "/api/v1/alerts") for _ in range(5)]
    rejected = session.get(stack.url + "/api/v1/alerts")

    assert "falling back to in-memory storage" in caplog.text
    assert [response.status_code for response in allowed] == [200] * 5
    assert allowed[-1].headers["RateLimit-Remaining"] == "0"
    assert_rate_limited(rejected, 5)


def test_fail_closed_rejects_with_503(broken_store_stacks):
    stack = broken_store_stacks["closed"]
    before = len(stack.stubs["notifications"].seen)

    response = client(unique_ip()).get(stack.url + "/api/v1/alerts")

    assert response.status_code == 503
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["Retry-After"] == "5"
    assert len(stack.stubs["notifications"].seen) == before


def test_fail_closed_still_checks_tokens(broken_store_stacks, tokens):
    stack = broken_store_stacks["closed"]

    response = client().get(
        stack.url + "/api/v1/alerts",
        headers=bearer(tokens.mint(Role.student, expires_in=-300)),
    )

    assert response.status_code == 401


def test_user_id_header_matches_subject(stack, tokens):
    user_id = uuid.uuid4()

    client().get(
        stack.url + "/api/v1/alerts",
        headers=bearer(tokens.mint("support_staff", subject=user_id)),
    )

    assert stack.last_seen("notifications")["headers"]["X-User-Id"] == str(user_id)
    assert stack.last_seen("notifications")["headers"]["X-User-Role"] == "support_staff"
