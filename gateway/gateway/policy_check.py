"""``/_policy``: the check that nginx's ``auth_request`` runs before routing.

nginx sends the client's Authorization header and describes the routed
request in ``X-Original-Method``, ``X-Original-Path`` and ``X-Client-IP``
(the address after nginx's trusted-proxy processing). The check verifies the
bearer token if there is one, applies every matching rate-limit policy and
returns 204 with ``X-User-Id`` and ``X-User-Role`` for nginx to pass
upstream.

``auth_request`` accepts only 2xx, 401 and 403 from here. So a 429 or 503
leaves as 403 with the real status in ``X-Edulink-Policy-Status``, and
nginx turns it back into that status. Every denial carries its problem detail in
``X-Edulink-Policy-Detail``, reduced to characters that are safe inside the
JSON body nginx writes.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, request

from edulink.auth import current_principal
from gateway.ratelimit.limiter import CheckedRequest, set_checked_request

policy_blp = Blueprint("policy", __name__)

ORIGINAL_METHOD = "X-Original-Method"
ORIGINAL_PATH = "X-Original-Path"
CLIENT_IP = "X-Client-IP"
STATUS_HEADER = "X-Edulink-Policy-Status"
DETAIL_HEADER = "X-Edulink-Policy-Detail"
RELAYED_STATUSES = (429, 503)

_UNSAFE_DETAIL = re.compile(r"[^A-Za-z0-9 .,:;/()'_=+-]")
_METHOD = re.compile(r"^[A-Z]{1,16}$")


@policy_blp.before_request
def _read_checked_request() -> None:
    method = request.headers.get(ORIGINAL_METHOD, "GET").upper()
    path = request.headers.get(ORIGINAL_PATH) or "/"
    set_checked_request(
        CheckedRequest(
            method=method if _METHOD.match(method) else "GET",
            path=path[:2048],
            client_ip=request.headers.get(CLIENT_IP) or request.remote_addr or "-",
        )
    )


@policy_blp.route(
    "/_policy", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
)
def check() -> Response:
    """Admit the request (204) with the caller's identity for the upstream."""
    response = Response(status=204)
    principal = current_principal()
    if principal is not None:
        response.headers["X-User-Id"] = principal.subject
        response.headers["X-User-Role"] = str(principal.role)
    return response


@policy_blp.after_request
def _relay_denial(response: Response) -> Response:
    status = response.status_code
    if status < 400:
        return response

    body = response.get_json(silent=True)
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        response.headers[DETAIL_HEADER] = _UNSAFE_DETAIL.sub(" ", detail)[:300]
    if status in RELAYED_STATUSES:
        response.headers[STATUS_HEADER] = str(status)
        response.status_code = 403
    return response
