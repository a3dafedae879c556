"""The /_policy endpoint itself, without nginx: relayed statuses and options."""

from __future__ import annotations

import pytest

from edulink.auth import Role
from tests.gateway.conftest import unique_ip


def check(http, *, method="GET", path="/api/v1/alerts", ip=None, token=None):
    headers = {
        "X-Original-Method": method,
        "X-Original-Path": path,
        "X-Client-IP": ip or unique_ip(),
    }
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return http.get("/_policy", headers=headers)


@pytest.mark.parametrize("strategy", ["fixed-window", "sliding-window-counter"])
def test_memory_store_enforces_limits(make_gateway_app, strategy):
    app = make_gateway_app(
        ratelimit_storage_uri="memory://",
        ratelimit_strategy=strategy,
        ratelimit_overrides={"anonymous": "2/hour"},
    )
    http, ip = app.test_client(), unique_ip()

    statuses = [check(http, ip=ip).status_code for _ in range(3)]

    assert statuses == [204, 204, 403]


def test_over_limit_is_relayed_as_403(make_gateway_app):
    app = make_gateway_app(ratelimit_overrides={"anonymous": "1/hour"})
    http, ip = app.test_client(), unique_ip()
    check(http, ip=ip)

    response = check(http, ip=ip)

    assert response.status_code == 403
    assert response.headers["X-Edulink-Policy-Status"] == "429"
    assert "anonymous" in response.headers["X-Edulink-Policy-Detail"]
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["RateLimit-Remaining"] == "0"


def test_invalid_token_stays_401(make_gateway_app, tokens):
    http = make_gateway_app().test_client()

    response = check(http, token=tokens.mint(Role.student, audience="other"))

    assert response.status_code == 401
    assert "audience" in response.headers["X-Edulink-Policy-Detail"]
    assert "X-Edulink-Policy-Status" not in response.headers


def test_policy_matches_method_and_path(make_gateway_app, tokens):
    app = make_gateway_app(ratelimit_overrides={"applications-per-user": "1/hour"})
    http = app.test_client()
    token = tokens.mint(Role.student)
    check(http, method="POST", path="/api/v1/applications/", token=token)

    listing = check(http, method="GET", path="/api/v1/applications", token=token)
    second = check(http, method="POST", path="/api/v1/applications", token=token)

    assert listing.status_code == 204
    assert second.status_code == 403
    assert second.headers["X-Edulink-Policy-Status"] == "429"


def test_unknown_policy_override_stops_start(make_gateway_app):
    with pytest.raises(ValueError, match="unknown rate-limit policies nope"):
        make_gateway_app(ratelimit_overrides={"nope": "1/hour"})


def test_disabled_limits_admit_everything(make_gateway_app):
    app = make_gateway_app(ratelimit_enabled=False)
    http, ip = app.test_client(), unique_ip()

    statuses = {check(http, ip=ip).status_code for _ in range(70)}

    assert statuses == {204}


def test_cleanup_command_deletes_expired(make_gateway_app):
    app = make_gateway_app()

    result = app.test_cli_runner().invoke(args=["limits", "cleanup"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("deleted ")


def test_keys_list_shows_signing_key(make_gateway_app):
    app = make_gateway_app()
    app.test_client().get("/.well-known/jwks.json")

    result = app.test_cli_runner().invoke(args=["keys", "list"])

    assert result.exit_code == 0, result.output
    assert "signing" in result.output
