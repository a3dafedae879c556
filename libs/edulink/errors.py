"""Problem details (RFC 9457) for every error response.

Business code raises a :class:`ProblemError` subclass carrying data; one handler
per app turns it, and every other HTTP error, into ``application/problem+json``.
Unexpected exceptions become a bare 500 whose body carries only the request id;
the traceback goes to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, json, request
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from edulink.logs import current_request_id

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://edulink.example/problems/"


class ProblemError(Exception):
    """An error with an HTTP status that a client can act on."""

    status = 500
    slug = "internal-error"

    def __init__(
        self,
        detail: str,
        *,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.title = title or HTTPStatus(self.status).phrase
        self.headers = dict(headers or {})
        self.extra = extra


class BadRequest(ProblemError):
    status = 400
    slug = "bad-request"


class Unauthorized(ProblemError):
    status = 401
    slug = "unauthorized"

    def __init__(self, detail: str, *, error: str = "invalid_token", **kwargs: Any):
        headers = {"WWW-Authenticate": f'Bearer error="{error}"'}
        if error == "missing_token":
            headers = {"WWW-Authenticate": "Bearer"}
        super().__init__(detail, headers=headers, **kwargs)


class Forbidden(ProblemError):
    status = 403
    slug = "forbidden"


class NotFound(ProblemError):
    status = 404
    slug = "not-found"


class Conflict(ProblemError):
    status = 409
    slug = "conflict"


class PreconditionFailed(ProblemError):
    status = 412
    slug = "precondition-failed"


class UnprocessableContent(ProblemError):
    status = 422
    slug = "validation-error"


class PreconditionRequired(ProblemError):
    status = 428
    slug = "precondition-required"


class TooManyRequests(ProblemError):
    status = 429
    slug = "rate-limited"


class BadGateway(ProblemError):
    status = 502
    slug = "bad-gateway"


class ServiceUnavailable(ProblemError):
    status = 503
    slug = "service-unavailable"


class GatewayTimeout(ProblemError):
    status = 504
    slug = "gateway-timeout"


def problem_response(
    status: int,
    *,
    detail: str,
    title: str | None = None,
    slug: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    """Build an ``application/problem+json`` response."""
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": TYPE_BASE + (slug or phrase.lower().replace(" ", "-").replace("'", "")),
        "title": title or phrase,
        "status": status,
        "detail": detail,
        "instance": request.path if request else None,
        "request_id": current_request_id(),
    }
    body.update(extra)
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _field_errors(messages: Mapping[str, Any]) -> list[dict[str, str]]:
    """Flatten webargs/marshmallow messages into ``{location, field, detail}`` items.

    webargs nests messages as ``{location: {field: [message, ...]}}`` and
    marshmallow nests further for nested schemas and list items.
    """
    errors: list[dict[str, str]] = []

    def walk(location: str, path: list[str], value: Any) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                walk(location, [*path, str(key)], inner)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(location, path, item)
        else:
            field = ".".join(path) or "_schema"
            errors.append({"location": location, "field": field, "detail": str(value)})

    for location, fields in messages.items():
        walk(str(location), [], fields)
    return errors


def _handle_problem(error: ProblemError) -> Response:
    return problem_response(
        error.status,
        detail=error.detail,
        title=error.title,
        slug=error.slug,
        headers=error.headers,
        **error.extra,
    )


def _handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    messages = data.get("messages") if isinstance(data, Mapping) else None
    headers = {}
    valid_methods = getattr(error, "valid_methods", None)
    if status == 405 and valid_methods:
        headers["Allow"] = ", ".join(sorted(valid_methods))
    if messages:
        errors = _field_errors(messages)
        fields = ", ".join(sorted({item["field"] for item in errors}))
        return problem_response(
            status,
            detail=f"The request has invalid or missing fields: {fields}.",
            slug="validation-error",
            headers=headers,
            errors=errors,
        )
    detail = error.description or HTTPStatus(status).description
    if status == 404:
        detail = f"No resource at {request.path}. Check the URL and the API version."
    elif status == 405:
        detail = f"{request.method} is not allowed on {request.path}."
    elif status == 413:
        limit = request.max_content_length
        detail = f"The request body is larger than the limit of {limit} bytes."
    return problem_response(status, detail=detail, headers=headers)


def _handle_stale_data(_error: StaleDataError) -> Response:
    return problem_response(
        412,
        detail="The resource changed while this request was applied. "
        "Fetch it again and retry with the new ETag.",
        slug="precondition-failed",
    )


def _handle_database_unavailable(error: OperationalError) -> Response:
    # Lost connections, a server restarting, timeouts and deadlocks: all pass,
    # so the client gets a 503 asking it to retry, not an internal error.
    log.warning(
        "database unavailable on %s %s: %s", request.method, request.path, error.orig
    )
    return problem_response(
        503,
        detail="The database is unavailable for a moment. Retry the request.",
        slug="service-unavailable",
        headers={"Retry-After": "5"},
    )


def _handle_unexpected(error: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return problem_response(
        500,
        detail="An unexpected error occurred. Quote the request_id when reporting it.",
        slug="internal-error",
    )


def register_error_handlers(app: Flask) -> None:
    """Make every 4xx and 5xx of ``app`` a problem+json response."""
    app.register_error_handler(ProblemError, _handle_problem)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(StaleDataError, _handle_stale_data)
    app.register_error_handler(OperationalError, _handle_database_unavailable)
    app.register_error_handler(Exception, _handle_unexpected)
