"""Flask-Limiter set up from the policy table, with RateLimit headers.

Every response that went through a limit carries ``RateLimit-Limit``,
``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds until the window
frees capacity) for the tightest limit that applied, and ``RateLimit-Policy``
naming it. A rejected request gets 429 with ``Retry-After``.

When the counter store fails, ``RATELIMIT_FAIL_MODE=open`` (the default)
counts in process memory until the store answers again, with a warning in
the log; ``closed`` rejects the request with 503.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from flask import Flask, Response, current_app, g, request
from flask_limiter import Limiter, RateLimitExceeded, RequestLimit
from flask_limiter._limits import RouteLimit
from limits.errors import StorageError

from edulink.auth import current_principal
from edulink.errors import problem_response
from gateway.ratelimit import storage as _storage  # noqa: F401 - registers the scheme
from gateway.ratelimit.policies import CheckedBy, Counts, Key, Policy
from gateway.settings import FailMode, GatewaySettings

log = logging.getLogger(__name__)

EXTENSION = "gateway.limiter"
KEY_PREFIX = "edulink"
STORE_RETRY_AFTER = "5"


@dataclass(frozen=True)
class CheckedRequest:
    """The request a policy applies to: for ``/_policy``, the one nginx routes."""

    method: str
    path: str
    client_ip: str


def checked_request() -> CheckedRequest:
    """Return the request being checked, by default the current one."""
    checked = g.get("_checked_request")
    if checked is None:
        checked = CheckedRequest(
            method=request.method,
            path=request.path,
            client_ip=request.headers.get("X-Real-IP") or request.remote_addr or "-",
        )
    return checked


def set_checked_request(checked: CheckedRequest) -> None:
    g._checked_request = checked


# Keys.


def ip_key() -> str:
    return f"ip:{checked_request().client_ip}"


def caller_key() -> str:
    principal = current_principal()
    if principal is None:
        return ip_key()
    return f"{principal.role}:{principal.subject}"


def account_key() -> str:
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    if not isinstance(email, str) or not email.strip():
        # Flask-Limiter skips a limit whose key is empty; a constant keeps it.
        return "account:-"
    return f"account:{email.strip().lower()[:254]}"


KEY_FUNCTIONS: dict[Key, Callable[[], str]] = {
    Key.ip: ip_key,
    Key.caller: caller_key,
    Key.account: account_key,
}


# Building limits from the table.


def _applies(policy: Policy) -> bool:
    checked = checked_request()
    return policy.matches(
        method=checked.method,
        path=checked.path,
        authenticated=current_principal() is not None,
    )


def _counts_failure(response: Response) -> bool:
    return response.status_code == 401


def policy_limits(
    limiter: Limiter, policies: tuple[Policy, ...], checked_by: CheckedBy
) -> list[RouteLimit]:
    """Return one Flask-Limiter decorator per policy enforced at ``checked_by``."""
    decorators = []
    for policy in policies:
        if policy.checked_by is not checked_by:
            continue
        decorators.append(
            limiter.shared_limit(
                policy.limit,
                scope=policy.name,
                key_func=KEY_FUNCTIONS[policy.key],
                exempt_when=lambda policy=policy: not _applies(policy),
                deduct_when=(
                    _counts_failure if policy.counts is Counts.failures else None
                ),
            )
        )
    return decorators


def limit_view(app: Flask, endpoint: str, decorators: list[RouteLimit]) -> None:
    """Wrap the registered view of ``endpoint`` in the limit decorators."""
    view = app.view_functions[endpoint]
    for decorator in decorators:
        view = decorator(view)
    app.view_functions[endpoint] = view


# The extension.


def init_limiter(app: Flask, settings: GatewaySettings) -> Limiter:
    """Create Flask-Limiter for ``app`` with the counter store from ``settings``."""
    fail_open = settings.ratelimit_fail_mode is FailMode.open
    limiter = Limiter(
        key_func=ip_key,
        storage_uri=settings.counter_storage_uri(),
        storage_options={
            "wrap_exceptions": True,
            "timeout": settings.ratelimit_storage_timeout,
        },
        strategy=settings.ratelimit_strategy,
        headers_enabled=False,
        in_memory_fallback_enabled=fail_open,
        swallow_errors=fail_open,
        key_prefix=KEY_PREFIX,
        enabled=settings.ratelimit_enabled,
    )
    # Flask runs before_request hooks in registration order and after_request
    # hooks in reverse, so these run before the limiter's checks and after
    # its deductions for failed logins.
    app.before_request(_forget_recent_writes)
    app.after_request(_add_rate_limit_headers)
    limiter.init_app(app)
    app.extensions[EXTENSION] = limiter
    app.register_error_handler(RateLimitExceeded, _handle_rate_limited)
    app.register_error_handler(StorageError, _handle_store_failure)
    return limiter


def current_limiter() -> Limiter:
    return current_app.extensions[EXTENSION]


def _forget_recent_writes() -> None:
    storage = current_limiter()._storage
    forget = getattr(storage, "forget_recent_writes", None)
    if forget is not None:
        forget()


def _tightest(limits: list[RequestLimit]) -> RequestLimit:
    """Pick the limit to report: a breached one, else the one with least left."""
    breached = [limit for limit in limits if limit.breached]
    if breached:
        return max(breached, key=lambda limit: limit.reset_at)
    return min(limits, key=lambda limit: (limit.remaining, limit.reset_at))


def rate_limit_headers(limits: list[RequestLimit]) -> dict[str, str]:
    """Return the RateLimit headers for the limits evaluated in this request."""
    if not limits:
        return {}
    chosen = _tightest(limits)
    reset = max(0, math.ceil(chosen.reset_at - time.time()))
    item = chosen.limit
    headers = {
        "RateLimit-Limit": str(item.amount),
        "RateLimit-Remaining": str(max(0, chosen.remaining)),
        "RateLimit-Reset": str(reset),
        "RateLimit-Policy": f"{item.amount};w={item.get_expiry()}",
    }
    if chosen.breached:
        headers["Retry-After"] = str(max(1, reset))
    return headers


def _add_rate_limit_headers(response: Response) -> Response:
    limiter = current_app.extensions.get(EXTENSION)
    if limiter is None or not limiter.enabled:
        return response
    try:
        headers = rate_limit_headers(limiter.current_limits)
    except (StorageError, psycopg.Error) as error:
        log.warning("rate-limit headers left out, the counter store failed: %s", error)
        return response
    response.headers.update(headers)
    return response


def _handle_rate_limited(error: RateLimitExceeded) -> Response:
    limit = error.limit
    log.info("rate limit %s (%s) exceeded", limit.scope, limit.limit)
    return problem_response(
        429,
        detail=f"Too many requests: the {limit.scope} limit of {limit.limit} is "
        "used up. Retry after the number of seconds in Retry-After.",
        slug="rate-limited",
        policy=limit.scope,
    )


def _handle_store_failure(error: StorageError) -> Response:
    log.error("rate-limit counter store failed, rejecting the request: %s", error)
    return problem_response(
        503,
        detail="Rate limits cannot be checked right now. Retry later.",
        slug="service-unavailable",
        headers={"Retry-After": STORE_RETRY_AFTER},
    )
