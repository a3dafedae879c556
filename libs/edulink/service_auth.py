"""Service tokens from the gateway's client-credentials grant, cached and renewed.

A :class:`ClientCredentialsTokenProvider` is the ``token_provider`` of an
:class:`edulink.http.ServiceClient`: each call returns a bearer token,
fetching a new one from the token endpoint when none is cached or the cached
one expires within ``renew_before`` seconds. One thread fetches while the
others wait, so a burst of calls costs one token request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from edulink.errors import ServiceUnavailable

log = logging.getLogger(__name__)


class ServiceTokenError(ServiceUnavailable):
    """No service token could be obtained, so the call cannot be authenticated."""


class ClientCredentialsTokenProvider:
    """Return a valid service token on each call (OAuth 2 client credentials).

    ``token_url`` is the gateway's ``/api/v1/auth/token``. The client id and
    secret go as HTTP Basic credentials. ``audience`` is requested when given.
    Timeouts are in seconds.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        audience: str | None = None,
        renew_before: float = 60.0,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.audience = audience
        self.renew_before = renew_before
        self.timeout = (connect_timeout, read_timeout)
        if session is None:
            session = requests.Session()
            # The token endpoint is internal, so proxy variables must not apply.
            session.trust_env = False
        self._session = session
        self._clock = clock
        self._token: str | None = None
        self._renew_at = 0.0
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        if self._token is not None and self._clock() < self._renew_at:
            return self._token
        with self._lock:
            now = self._clock()
            if self._token is None or now >= self._renew_at:
                self._renew(now)
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        """Drop the cached token, for example after a service answered 401."""
        with self._lock:
            self._token = None

    def _renew(self, now: float) -> None:
        try:
            token, expires_in = self._fetch()
        except ServiceTokenError:
            if self._token is not None and now < self._expires_at:
                log.warning(
                    "renewing the service token of %s failed; the current one "
                    "stays in use until it expires",
                    self.client_id,
                )
                return
            raise
        self._token = token
        self._expires_at = now + expires_in
        # Renew renew_before seconds early, or halfway for a lifetime that short.
        margin = min(self.renew_before, expires_in / 2)
        self._renew_at = now + expires_in - margin
        log.info(
            "obtained a service token for %s, valid %d s", self.client_id, expires_in
        )

    def _fetch(self) -> tuple[str, float]:
        data = {"grant_type": "client_credentials"}
        if self.audience:
            data["audience"] = self.audience
        try:
            response = self._session.post(
                self.token_url,
                data=data,
                auth=(self.client_id, self._client_secret),
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as error:
            raise ServiceTokenError(
                f"The token endpoint {self.token_url} could not be reached: {error}."
            ) from None
        if response.status_code != 200:
            raise ServiceTokenError(
                f"The token endpoint {self.token_url} returned "
                f"{response.status_code} for client {self.client_id}. Check the "
                "client id and secret."
            )
        return _parse_token(response, self.token_url)


def _parse_token(response: requests.Response, url: str) -> tuple[str, float]:
    try:
        body: Any = response.json()
        token = body["access_token"]
        expires_in = float(body["expires_in"])
    except (ValueError, KeyError, TypeError):
        raise ServiceTokenError(
            f"The token endpoint {url} returned no access_token and expires_in."
        ) from None
    if not isinstance(token, str) or not token or expires_in <= 0:
        raise ServiceTokenError(f"The token endpoint {url} returned an unusable token.")
    return token, expires_in
