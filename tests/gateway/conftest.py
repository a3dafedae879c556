"""Fixtures for the gateway: a migrated schema, apps, a token factory, nginx."""

from __future__ import annotations

import itertools
import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# The gateway project directory has the same name as its package; with the
# repository root on sys.path, this entry lets `import gateway` find the package.
_PROJECT = str(Path(__file__).resolve().parents[2] / "gateway")
if _PROJECT not in sys.path:
    sys.path.append(_PROJECT)

from flask import Flask  # noqa: E402

from edulink.migrations import upgrade  # noqa: E402
from edulink.testing.tokens import TokenFactory  # noqa: E402
from gateway.app import MIGRATIONS_DIR, create_app  # noqa: E402
from gateway.models import SCHEMA  # noqa: E402
from tests.gateway.harness import TEST_SETTINGS, Stack, nginx_stack  # noqa: E402

_addresses = itertools.count(1)


@pytest.fixture(scope="session")
def gateway_database(database_url: str) -> str:
    upgrade(MIGRATIONS_DIR, database_url, SCHEMA)
    return database_url


@pytest.fixture(scope="session")
def tokens() -> Iterator[TokenFactory]:
    """Mints tokens that the gateway trusts through its extra JWKS file."""
    with TokenFactory(
        issuer=TEST_SETTINGS["jwt_issuer"], audience=TEST_SETTINGS["jwt_audience"]
    ) as factory:
        yield factory


AppFactory = Callable[..., Flask]


@pytest.fixture(scope="session")
def make_gateway_app(gateway_database: str, tokens: TokenFactory) -> AppFactory:
    def make(**overrides: Any) -> Flask:
        settings = {
            **TEST_SETTINGS,
            "database_url": gateway_database,
            "jwks_extra_file": str(tokens.jwks_path),
            **overrides,
        }
        app = create_app(**settings)
        app.config["TESTING"] = True
        return app

    return make


def unique_ip() -> str:
    """Return a client address, as nginx reports it, that no other test here uses.

    Counters live in this pytest process's own database, so the addresses
    only need to differ within the process.
    """
    number = next(_addresses)
    return f"10.{(number >> 16) & 255}.{(number >> 8) & 255}.{number & 255}"


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{random.getrandbits(48):012x}@example.org"


LIMITS_UNDER_TEST = {
    "anonymous": "5/hour;50/day",
    "authenticated": "8/hour",
    "login-per-ip": "3/hour",
    "login-per-account": "3/hour",
    "registration-per-ip": "2/hour",
    "password-reset-per-ip": "2/hour",
    "applications-per-user": "2/minute;10/hour",
    "support-tickets": "2/hour",
    "document-requests": "10/minute;3/hour",
}


@pytest.fixture(scope="module")
def gateway_app(make_gateway_app: AppFactory) -> Flask:
    """The gateway app with small limits, shared by a test module."""
    return make_gateway_app(ratelimit_overrides=LIMITS_UNDER_TEST)


@pytest.fixture(scope="module")
def stack(
    gateway_app: Flask, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """nginx in front of the gateway app and four stub services."""
    with nginx_stack(gateway_app, tmp_path_factory.mktemp("nginx")) as running:
        yield running
