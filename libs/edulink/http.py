"""HTTP client for calls from one Edulink service to another.

:class:`ServiceClient` adds the caller's request id and a service token to
every call, bounds it with connect and read timeouts, retries idempotent
methods on connection errors and 502/503/504, and turns every failure into an
:class:`UpstreamCallError` that the service's error handler renders as
problem+json. Tests observe calls through :func:`add_call_listener`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from edulink.errors import BadGateway, GatewayTimeout, ProblemError, ServiceUnavailable
from edulink.logs import REQUEST_ID_HEADER, request_id_var
from edulink.settings import PlatformSettings

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({502, 503, 504})


# Call events.


@dataclass(frozen=True)
class OutgoingCall:
    """One call made by a :class:`ServiceClient`, after its last attempt."""

    service: str
    method: str
    path: str
    status: int | None
    attempts: int
    elapsed_seconds: float
    error: str | None


CallListener = Callable[[OutgoingCall], None]
_listeners: list[CallListener] = []


def add_call_listener(listener: CallListener) -> None:
    """Call ``listener`` after every outgoing call, in whichever thread made it."""
    _listeners.append(listener)


def remove_call_listener(listener: CallListener) -> None:
    _listeners.remove(listener)


def _notify(call: OutgoingCall) -> None:
    for listener in list(_listeners):
        listener(call)


# Errors.


class UpstreamCallError(ProblemError):
    """A call to another service failed. Carries the call's service, method and path."""

    def __init__(
        self,
        detail: str,
        *,
        service: str,
        method: str,
        path: str,
        upstream_status: int | None = None,
        **extra: Any,
    ) -> None:
        if upstream_status is not None:
            extra["upstream_status"] = upstream_status
        super().__init__(detail, **extra)
        self.service = service
        self.method = method
        self.path = path
        self.upstream_status = upstream_status


class UpstreamUnavailable(UpstreamCallError, ServiceUnavailable):
    """The service refused or dropped the connection, or returned 503."""


class UpstreamTimeout(UpstreamCallError, GatewayTimeout):
    """The service did not accept the connection or respond in time, or returned 504."""


class UpstreamError(UpstreamCallError, BadGateway):
    """The service returned another 5xx, a redirect or an unreadable body."""


class UpstreamClientError(UpstreamCallError, BadGateway):
    """The service rejected the call with a 4xx status.

    ``upstream_status`` and ``problem`` (the parsed problem+json body, or None)
    let the caller decide, for example to turn a 404 into its own response.
    Left unhandled it becomes a 502, because the caller's own client did
    nothing wrong.
    """

    def __init__(
        self,
        detail: str,
        *,
        problem: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(detail, **kwargs)
        self.problem = problem


# The client.


@dataclass
class _CallRecord:
    attempts: int = 0
    status: int | None = None
    error: str | None = None


class ServiceClient:
    """Client for one service's API at ``base_url``.

    ``token_provider`` returns the bearer token sent with every call, or None
    for none. ``retries`` is the number of extra attempts for idempotent
    methods, waiting ``backoff`` seconds and then twice as long each time.
    POST and PATCH are never retried, because the first attempt may have
    been applied. Timeouts are in seconds.
    """

    def __init__(
        self,
        base_url: str,
        *,
        name: str | None = None,
        token_provider: Callable[[], str | None] | None = None,
        connect_timeout: float = 2.0,
        read_timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.2,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name or urlsplit(base_url).netloc or base_url
        self.token_provider = token_provider
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retries = retries
        self.backoff = backoff
        if session is None:
            session = requests.Session()
            # Service addresses are internal, so proxy variables must not apply.
            session.trust_env = False
        self.session = session

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def get_json(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """GET ``path`` and return the JSON body, or None if empty."""
        return self._call_json("GET", path, params=params, headers=headers)

    def post_json(
        self,
        path: str,
        json: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """POST ``json`` to ``path`` and return the JSON body, or None if empty."""
        return self._call_json("POST", path, json=json, headers=headers)

    def put_json(
        self, path: str, json: Any = None, *, headers: Mapping[str, str] | None = None
    ) -> Any:
        return self._call_json("PUT", path, json=json, headers=headers)

    def patch_json(
        self, path: str, json: Any = None, *, headers: Mapping[str, str] | None = None
    ) -> Any:
        return self._call_json("PATCH", path, json=json, headers=headers)

    def delete(self, path: str, *, headers: Mapping[str, str] | None = None) -> Any:
        return self._call_json("DELETE", path, headers=headers)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send one call, with retries where safe, and return a response below 400.

        Raises an :class:`UpstreamCallError` subclass for everything else.
        """
        method = method.upper()
        url = self._url(path)
        shown_path = path.split("?", 1)[0]
        record = _CallRecord()
        started = time.perf_counter()
        try:
            response = self._send(
                record,
                method,
                url,
                shown_path,
                params=params,
                json=json,
                headers=self._headers(headers),
            )
            self._raise_for_status(response, method, shown_path)
            return response
        except UpstreamCallError as failure:
            record.error = type(failure).__name__
            raise
        finally:
            if _listeners:
                _notify(
                    OutgoingCall(
                        service=self.name,
                        method=method,
                        path=shown_path,
                        status=record.status,
                        attempts=record.attempts,
                        elapsed_seconds=time.perf_counter() - started,
                        error=record.error,
                    )
                )

    def _url(self, path: str) -> str:
        # An absolute URL here would send the service token to another host.
        if "://" in path.split("?", 1)[0] or path.startswith("//"):
            raise ValueError(f"path must be relative to {self.base_url}: {path!r}")
        return f"{self.base_url}/{path.lstrip('/')}"

    def _headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {"Accept": "application/json, application/problem+json"}
        request_id = request_id_var.get()
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        token = self.token_provider() if self.token_provider else None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        headers.update(extra or {})
        return headers

    def _send(
        self,
        record: _CallRecord,
        method: str,
        url: str,
        shown_path: str,
        **kwargs: Any,
    ) -> requests.Response:
        max_attempts = 1 + (self.retries if method in IDEMPOTENT_METHODS else 0)
        while True:
            record.attempts += 1
            try:
                response = self.session.request(
                    method,
                    url,
                    timeout=(self.connect_timeout, self.read_timeout),
                    allow_redirects=False,
                    **kwargs,
                )
            except requests.RequestException as error:
                # A read timeout is not retried, because the service may still
                # be working on the call and each retry would add read_timeout.
                retryable = isinstance(error, requests.ConnectionError)
                if not retryable or record.attempts >= max_attempts:
                    raise self._failure_from_exception(
                        error, method, shown_path
                    ) from None
                self._wait_before_retry(
                    record.attempts, max_attempts, method, shown_path, error
                )
                continue

            record.status = response.status_code
            if (
                response.status_code in RETRY_STATUSES
                and record.attempts < max_attempts
            ):
                response.close()
                self._wait_before_retry(
                    record.attempts,
                    max_attempts,
                    method,
                    shown_path,
                    f"status {response.status_code}",
                )
                continue
            return response

    def _wait_before_retry(
        self, attempt: int, max_attempts: int, method: str, path: str, reason: object
    ) -> None:
        delay = self.backoff * 2 ** (attempt - 1)
        log.warning(
            "retrying %s %s on %s in %.2f s after %s (attempt %d of %d)",
            method,
            path,
            self.name,
            delay,
            reason,
            attempt + 1,
            max_attempts,
        )
        time.sleep(delay)

    def _failure_from_exception(
        self, error: requests.RequestException, method: str, path: str
    ) -> UpstreamCallError:
        where = {"service": self.name, "method": method, "path": path}
        log.warning("%s %s on %s failed: %s", method, path, self.name, error)
        if isinstance(error, requests.ConnectTimeout):
            return UpstreamTimeout(
                f"The {self.name} service did not accept a connection within "
                f"{self.connect_timeout} s for {method} {path}. Retry later.",
                **where,
            )
        if isinstance(error, requests.Timeout):
            return UpstreamTimeout(
                f"The {self.name} service did not respond within "
                f"{self.read_timeout} s to {method} {path}.",
                **where,
            )
        if isinstance(error, requests.ConnectionError):
            return UpstreamUnavailable(
                f"The {self.name} service could not be reached for {method} {path}. "
                "Retry later.",
                **where,
            )
        return UpstreamError(
            f"The call {method} {path} to the {self.name} service failed: "
            f"{type(error).__name__}.",
            **where,
        )

    def _raise_for_status(
        self, response: requests.Response, method: str, path: str
    ) -> None:
        status = response.status_code
        if status < 400:
            return

        where = {"service": self.name, "method": method, "path": path}
        if status < 500:
            log.info("%s %s on %s returned %d", method, path, self.name, status)
            raise UpstreamClientError(
                f"The {self.name} service rejected {method} {path} "
                f"with status {status}.",
                problem=_problem_body(response),
                upstream_status=status,
                **where,
            )

        log.warning("%s %s on %s returned %d", method, path, self.name, status)
        if status == 503:
            raise UpstreamUnavailable(
                f"The {self.name} service is unavailable (503) for {method} {path}. "
                "Retry later.",
                upstream_status=status,
                **where,
            )
        if status == 504:
            raise UpstreamTimeout(
                f"The {self.name} service timed out (504) on {method} {path}.",
                upstream_status=status,
                **where,
            )
        raise UpstreamError(
            f"The {self.name} service failed with status {status} on {method} {path}.",
            upstream_status=status,
            **where,
        )

    def _call_json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        shown_path = path.split("?", 1)[0]
        where = {"service": self.name, "method": method, "path": shown_path}
        status = response.status_code
        if not 200 <= status < 300:
            log.warning(
                "%s %s on %s returned unexpected status %d",
                method,
                shown_path,
                self.name,
                status,
            )
            raise UpstreamError(
                f"The {self.name} service returned status {status} "
                f"to {method} {shown_path}, expected 2xx.",
                upstream_status=status,
                **where,
            )

        if status == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            log.warning(
                "%s %s on %s returned invalid JSON", method, shown_path, self.name
            )
            raise UpstreamError(
                f"The {self.name} service returned invalid JSON "
                f"to {method} {shown_path}.",
                upstream_status=status,
                **where,
            ) from None


def service_client_from_settings(
    base_url: str, settings: PlatformSettings, *, name: str | None = None
) -> ServiceClient:
    """Build a client with the timeouts and service token from ``settings``."""
    token = settings.service_token
    return ServiceClient(
        base_url,
        name=name,
        token_provider=(lambda: token.get_secret_value()) if token else None,
        connect_timeout=settings.http_connect_timeout,
        read_timeout=settings.http_read_timeout,
    )


def _problem_body(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
