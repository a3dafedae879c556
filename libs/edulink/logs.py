"""JSON logs, one object per line, with request, job and actor ids attached.

The ids live in context variables, so every log line written while a request
or a job runs carries them without the caller passing them around.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from flask import Flask, Response, g, request
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"
# Used with fullmatch: "$" alone also matches before a trailing newline, and a
# newline in the echoed header makes Werkzeug fail the response.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
job_id_var: ContextVar[str | None] = ContextVar("job_id", default=None)
actor_var: ContextVar[str | None] = ContextVar("actor", default=None)

_service_name = "edulink"


def current_request_id() -> str | None:
    return request_id_var.get()


def new_request_id() -> str:
    return uuid.uuid4().hex


@contextmanager
def bound_context(
    *,
    request_id: str | None = None,
    job_id: str | None = None,
    actor: str | None = None,
) -> Iterator[None]:
    """Attach ids to every log line written inside the block."""
    tokens = [
        (request_id_var, request_id_var.set(request_id or request_id_var.get())),
        (job_id_var, job_id_var.set(job_id or job_id_var.get())),
        (actor_var, actor_var.set(actor or actor_var.get())),
    ]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.service = _service_name
        record.request_id = request_id_var.get()
        job_id = job_id_var.get()
        if job_id is not None:
            record.job_id = job_id
        actor = actor_var.get()
        if actor is not None:
            record.actor = actor
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every logger's records to stdout as JSON lines. Safe to call twice."""
    global _service_name
    _service_name = service
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
        )
    )
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_edulink", False):
            root.removeHandler(existing)
    handler._edulink = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)


def init_request_ids(app: Flask) -> None:
    """Accept a well-formed ``X-Request-ID`` or generate one, and echo it back."""

    @app.before_request
    def _bind_request_id() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = (
            incoming if _VALID_REQUEST_ID.fullmatch(incoming) else new_request_id()
        )
        g._request_id_token = request_id_var.set(request_id)

    @app.after_request
    def _echo_request_id(response: Response) -> Response:
        request_id = request_id_var.get()
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
        return response

    @app.teardown_request
    def _unbind_request_id(_error: BaseException | None) -> None:
        token = g.pop("_request_id_token", None)
        if token is not None:
            request_id_var.reset(token)


def log_extra(**ids: Any) -> dict[str, Any]:
    """Build ``extra=`` for a log call, leaving out ids that are None."""
    return {key: value for key, value in ids.items() if value is not None}
