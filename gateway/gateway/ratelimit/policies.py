"""The gateway's rate-limit policies, in one table.

Every request that nginx routes is checked by the gateway's ``/_policy``
endpoint against each policy whose caller, method and path match it. All
matching policies apply together, and the limits inside one policy
(``"3/minute;10/hour"``: a burst limit and a sustained one) stack too: a
request is admitted only if it fits every one. Limit strings use the
``limits`` library's notation: ``N/second|minute|hour|day`` or
``N/M minutes``.

``checked_by`` says where a policy is enforced. The login-per-account policy
needs the email in the request body, which nginx's ``auth_request`` does not
forward, so the login view enforces it itself.

``RATELIMIT_OVERRIDES`` replaces limits by policy name at start, for example
``{"anonymous": "120/minute;2000/day"}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from limits import parse_many


class Caller(StrEnum):
    """The group of callers a policy applies to."""

    anyone = "anyone"
    anonymous = "anonymous"
    authenticated = "authenticated"


class Key(StrEnum):
    """The key a policy counts requests by."""

    # The client's IP address, as nginx determined it from trusted proxies.
    ip = "ip"
    # The signed-in user's id or the service's client id, else the IP address.
    caller = "caller"
    # The email address in a login request's body.
    account = "account"


class Counts(StrEnum):
    """The kind of request that uses up a policy's limit."""

    every_request = "every_request"
    # Only rejected credentials (a 401 response), so failed logins lock an
    # account while correct logins cost nothing.
    failures = "failures"


class CheckedBy(StrEnum):
    policy_check = "policy_check"
    login_view = "login_view"


@dataclass(frozen=True)
class Policy:
    """A named limit on requests that match a caller kind, methods and a path.

    ``path`` matches that exact path, with or without a trailing slash; None
    matches every path. An empty ``methods`` matches every method.
    """

    name: str
    limit: str
    key: Key
    caller: Caller = Caller.anyone
    methods: frozenset[str] = frozenset()
    path: str | None = None
    counts: Counts = Counts.every_request
    checked_by: CheckedBy = CheckedBy.policy_check

    def matches(self, *, method: str, path: str, authenticated: bool) -> bool:
        if self.caller is Caller.anonymous and authenticated:
            return False
        if self.caller is Caller.authenticated and not authenticated:
            return False
        if self.methods and method.upper() not in self.methods:
            return False
        return self.path is None or path.rstrip("/") == self.path


POST = frozenset({"POST"})
LOGIN_PATH = "/api/v1/auth/login"

POLICIES: tuple[Policy, ...] = (
    # Everyone: anonymous callers strictly per IP, signed-in callers per user.
    Policy("anonymous", "60/minute;1000/day", Key.ip, caller=Caller.anonymous),
    Policy("authenticated", "600/minute", Key.caller, caller=Caller.authenticated),
    # Brute force: per IP at the gateway, and per account in the login view,
    # where 5 failed logins lock the account for the rest of 15 minutes.
    Policy("login-per-ip", "10/minute;100/hour", Key.ip, methods=POST, path=LOGIN_PATH),
    Policy(
        "login-per-account",
        "5/15 minutes",
        Key.account,
        methods=POST,
        path=LOGIN_PATH,
        counts=Counts.failures,
        checked_by=CheckedBy.login_view,
    ),
    # Sign-ups and password reset emails, per IP.
    Policy(
        "registration-per-ip",
        "5/hour;20/day",
        Key.ip,
        methods=POST,
        path="/api/v1/accounts",
    ),
    Policy(
        "password-reset-per-ip",
        "5/hour",
        Key.ip,
        methods=POST,
        path="/api/v1/accounts/password-reset",
    ),
    # Sensitive actions per user.
    Policy(
        "applications-per-user",
        "3/minute;10/hour",
        Key.caller,
        methods=POST,
        path="/api/v1/applications",
    ),
    Policy(
        "support-tickets",
        "3/minute;10/day",
        Key.caller,
        methods=POST,
        path="/api/v1/support/tickets",
    ),
    Policy(
        "document-requests",
        "5/minute;30/hour",
        Key.caller,
        methods=POST,
        path="/api/v1/documents",
    ),
)


def with_overrides(
    policies: Iterable[Policy], overrides: Mapping[str, str]
) -> tuple[Policy, ...]:
    """Return ``policies`` with the limits in ``overrides`` replaced by name.

    Raises ValueError for an unknown policy name or an invalid limit string.
    """
    policies = tuple(policies)
    known = {policy.name for policy in policies}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(
            f"unknown rate-limit policies {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    for name, limit in overrides.items():
        try:
            parse_many(limit)
        except ValueError as error:
            raise ValueError(f"invalid limit {limit!r} for {name}: {error}") from None
    return tuple(
        replace(policy, limit=overrides.get(policy.name, policy.limit))
        for policy in policies
    )


def policy_named(policies: Iterable[Policy], name: str) -> Policy:
    for policy in policies:
        if policy.name == name:
            return policy
    raise KeyError(name)
