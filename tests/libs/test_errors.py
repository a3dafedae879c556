"""Problem details: error classes, field flattening and the app-wide handlers."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask_smorest import abort
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.exc import StaleDataError

from edulink import errors, logs
from edulink.errors import (
    PROBLEM_JSON,
    BadGateway,
    BadRequest,
    Conflict,
    Forbidden,
    GatewayTimeout,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    ProblemError,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    UnprocessableContent,
    _field_errors,
    register_error_handlers,
)
from edulink.logs import configure_logging, init_request_ids

SECRET = "postgres-password-hunter2"


@pytest.fixture
def app() -> Flask:
    app = Flask("errors-test")
    app.config["MAX_CONTENT_LENGTH"] = 32
    init_request_ids(app)
    register_error_handlers(app)

    @app.get("/boom")
    def boom():
        raise RuntimeError(f"connection failed for {SECRET}")

    @app.get("/conflict")
    def conflict():
        raise Conflict("The claim was already decided.", status_now="approved")

    @app.get("/rate-limited")
    def rate_limited():
        raise TooManyRequests("Slow down.", headers={"Retry-After": "30"})

    @app.get("/stale")
    def stale():
        raise StaleDataError("UPDATE statement expected to update 1 row")

    @app.get("/invalid")
    def invalid():
        abort(422, messages={"json": {"name": ["Missing data for required field."]}})

    @app.post("/upload")
    def upload():
        from flask import request

        return {"size": len(request.get_data())}

    return app


@pytest.fixture
def json_logs() -> Iterator[Callable[[], list[dict]]]:
    """Route log records to a buffer as JSON lines; restore logging after."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_service = logs._service_name
    configure_logging("errors-test", "INFO")
    buffer = io.StringIO()
    for handler in root.handlers:
        if getattr(handler, "_edulink", False):
            handler.setStream(buffer)

    def read() -> list[dict]:
        return [json.loads(line) for line in buffer.getvalue().splitlines()]

    yield read
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    logs._service_name = saved_service


# Field flattening


def test_flatten_simple_fields():
    flattened = _field_errors({"json": {"name": ["Missing.", "Too short."]}})

    assert flattened == [
        {"location": "json", "field": "name", "detail": "Missing."},
        {"location": "json", "field": "name", "detail": "Too short."},
    ]


def test_flatten_nested_and_list_items():
    messages = {
        "json": {
            "address": {"city": ["Not a string."]},
            "skills": {1: ["Too long."], 3: ["Empty."]},
        },
        "query": {"limit": ["Must be between 1 and 100."]},
    }

    flattened = _field_errors(messages)

    assert [(item["location"], item["field"]) for item in flattened] == [
        ("json", "address.city"),
        ("json", "skills.1"),
        ("json", "skills.3"),
        ("query", "limit"),
    ]


def test_flatten_schema_level_message():
    flattened = _field_errors({"json": ["Invalid JSON body."]})

    assert flattened == [
        {"location": "json", "field": "_schema", "detail": "Invalid JSON body."}
    ]


def test_flatten_empty_messages():
    assert _field_errors({}) == []


def test_validation_abort_lists_fields(app):
    response = app.test_client().get("/invalid")

    assert response.status_code == 422
    assert response.mimetype == PROBLEM_JSON
    body = response.get_json()
    assert body["errors"] == [
        {
            "location": "json",
            "field": "name",
            "detail": "Missing data for required field.",
        }
    ]
    assert "name" in body["detail"]
    assert body["type"].endswith("/validation-error")


# Error classes


@pytest.mark.parametrize(
    ("error_class", "status"),
    [
        (BadRequest, 400),
        (Unauthorized, 401),
        (Forbidden, 403),
        (NotFound, 404),
        (Conflict, 409),
        (PreconditionFailed, 412),
        (UnprocessableContent, 422),
        (PreconditionRequired, 428),
        (TooManyRequests, 429),
        (BadGateway, 502),
        (ServiceUnavailable, 503),
        (GatewayTimeout, 504),
    ],
)
def test_error_class_status(app, error_class, status):
    @app.get("/raise")
    def raise_error():
        raise error_class("Something specific failed.")

    response = app.test_client().get("/raise")

    assert response.status_code == status
    assert response.mimetype == PROBLEM_JSON
    assert response.get_json()["status"] == status
    assert response.get_json()["detail"] == "Something specific failed."
    assert response.get_json()["type"] == errors.TYPE_BASE + error_class.slug


def test_problem_extras_go_into_body(app):
    response = app.test_client().get("/conflict")

    body = response.get_json()
    assert response.status_code == 409
    assert body["status_now"] == "approved"
    assert body["title"] == "Conflict"
    assert body["instance"] == "/conflict"


def test_problem_headers_are_sent(app):
    response = app.test_client().get("/rate-limited")

    assert response.headers["Retry-After"] == "30"


def test_unauthorized_names_the_error():
    error = Unauthorized("Expired.")

    assert error.headers == {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def test_unauthorized_missing_token_plain_challenge():
    error = Unauthorized("No token.", error="missing_token")

    assert error.headers == {"WWW-Authenticate": "Bearer"}


def test_problem_error_custom_title():
    error = ProblemError("Detail.", title="Custom")

    assert error.title == "Custom"
    assert str(error) == "Detail."


def test_stale_data_is_412(app):
    response = app.test_client().get("/stale")

    assert response.status_code == 412
    assert response.mimetype == PROBLEM_JSON
    assert "ETag" in response.get_json()["detail"]


# Framework errors


def test_unknown_route_is_404_problem(app):
    response = app.test_client().get("/nowhere")

    assert response.status_code == 404
    assert response.mimetype == PROBLEM_JSON
    assert "/nowhere" in response.get_json()["detail"]


def test_wrong_method_is_405_with_allow(app):
    response = app.test_client().delete("/conflict")

    assert response.status_code == 405
    assert response.mimetype == PROBLEM_JSON
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_oversized_body_is_413(app):
    response = app.test_client().post("/upload", data=b"x" * 33)

    assert response.status_code == 413
    assert response.mimetype == PROBLEM_JSON
    assert "32 bytes" in response.get_json()["detail"]


def test_body_at_limit_is_accepted(app):
    response = app.test_client().post("/upload", data=b"x" * 32)

    assert response.status_code == 200


# Unexpected errors


def test_500_body_has_no_trace(app, json_logs):
    response = app.test_client().get("/boom")

    text = response.get_data(as_text=True)
    assert response.status_code == 500
    assert response.mimetype == PROBLEM_JSON
    assert "Traceback" not in text
    assert "RuntimeError" not in text
    assert SECRET not in text


def test_500_body_has_request_id(app, json_logs):
    response = app.test_client().get("/boom", headers={"X-Request-ID": "req-500"})

    assert response.get_json()["request_id"] == "req-500"
    assert response.headers["X-Request-ID"] == "req-500"


def test_500_logged_once_with_request_id(app, json_logs):
    app.test_client().get("/boom", headers={"X-Request-ID": "req-500"})

    errors_logged = [line for line in json_logs() if line["level"] == "ERROR"]
    assert len(errors_logged) == 1
    assert errors_logged[0]["request_id"] == "req-500"
    assert errors_logged[0]["service"] == "errors-test"
    assert "GET /boom" in errors_logged[0]["message"]
    assert "RuntimeError" in errors_logged[0]["exc_info"]


def test_handled_problem_is_not_logged_as_error(app, json_logs):
    app.test_client().get("/conflict")

    assert [line for line in json_logs() if line["level"] == "ERROR"] == []


def test_database_unavailable_is_503(app):
    @app.get("/database-down")
    def database_down():
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    response = app.test_client().get("/database-down")

    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "5"
