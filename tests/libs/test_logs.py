"""JSON log lines with service, request, job and actor ids attached."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from flask import Flask

from edulink import logs
from edulink.logs import (
    bound_context,
    configure_logging,
    current_request_id,
    init_request_ids,
    log_extra,
    request_id_var,
)

log = logging.getLogger("tests.libs.test_logs")


@pytest.fixture
def json_logs() -> Iterator[Callable[[], list[dict]]]:
    """Configure JSON logging into a buffer; restore the root logger after."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_service = logs._service_name
    configure_logging("logs-test", "INFO")
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


def test_line_has_standard_fields(json_logs):
    with bound_context(request_id="req-1"):
        log.warning("student %s created", "s-1")

    (line,) = json_logs()
    assert line["message"] == "student s-1 created"
    assert line["level"] == "WARNING"
    assert line["service"] == "logs-test"
    assert line["request_id"] == "req-1"
    assert line["logger"] == "tests.libs.test_logs"
    assert datetime.fromisoformat(line["timestamp"]).tzinfo is not None


def test_request_id_null_outside_request(json_logs):
    log.info("started")

    (line,) = json_logs()
    assert line["request_id"] is None
    assert "job_id" not in line
    assert "actor" not in line


def test_job_and_actor_ids_attached(json_logs):
    with bound_context(job_id="job-7", actor="user-3"):
        log.info("job ran")

    (line,) = json_logs()
    assert line["job_id"] == "job-7"
    assert line["actor"] == "user-3"


def test_extra_fields_appear(json_logs):
    log.info("claim decided", extra={"claim_id": "c-1", "status": "approved"})

    (line,) = json_logs()
    assert line["claim_id"] == "c-1"
    assert line["status"] == "approved"


def test_level_filters_lower_records(json_logs):
    log.debug("noise")
    log.info("kept")

    assert [line["message"] for line in json_logs()] == ["kept"]


def test_exception_has_exc_info(json_logs):
    try:
        raise ValueError("bad value")
    except ValueError:
        log.exception("failed")

    (line,) = json_logs()
    assert line["level"] == "ERROR"
    assert "ValueError: bad value" in line["exc_info"]


def test_configure_twice_writes_once(json_logs):
    configure_logging("logs-test", "INFO")
    buffer = io.StringIO()
    edulink_handlers = [
        handler
        for handler in logging.getLogger().handlers
        if getattr(handler, "_edulink", False)
    ]
    for handler in edulink_handlers:
        handler.setStream(buffer)

    log.info("once")

    assert len(edulink_handlers) == 1
    assert buffer.getvalue().count("once") == 1


def test_every_line_is_one_json_object(json_logs):
    log.info("multi\nline message")

    (line,) = json_logs()
    assert line["message"] == "multi\nline message"


# Context variables


def test_bound_context_restores_outer_ids():
    with bound_context(request_id="outer", actor="a-1"):
        with bound_context(job_id="job-1"):
            assert request_id_var.get() == "outer"
            assert logs.job_id_var.get() == "job-1"
        assert logs.job_id_var.get() is None
        assert current_request_id() == "outer"
    assert current_request_id() is None
    assert logs.actor_var.get() is None


def test_bound_context_inner_overrides():
    with bound_context(request_id="outer"), bound_context(request_id="inner"):
        assert current_request_id() == "inner"


def test_bound_context_restores_after_error():
    with pytest.raises(RuntimeError), bound_context(request_id="req-9"):
        raise RuntimeError("fails inside")

    assert current_request_id() is None


def test_log_extra_drops_none():
    assert log_extra(claim_id="c-1", job_id=None) == {"claim_id": "c-1"}


# Request ids in a Flask app


@pytest.fixture
def app() -> Flask:
    app = Flask("logs-test")
    init_request_ids(app)

    @app.get("/work")
    def work():
        log.info("working")
        return {"request_id": current_request_id()}

    return app


def test_request_lines_carry_request_id(app, json_logs):
    response = app.test_client().get("/work", headers={"X-Request-ID": "req-77"})

    (line,) = json_logs()
    assert line["request_id"] == "req-77"
    assert response.get_json()["request_id"] == "req-77"


def test_request_id_unbound_after_request(app):
    app.test_client().get("/work", headers={"X-Request-ID": "req-78"})

    assert current_request_id() is None


def test_generated_id_is_uuid_hex(app):
    response = app.test_client().get("/work")

    request_id = response.headers["X-Request-ID"]
    assert len(request_id) == 32
    assert int(request_id, 16) >= 0
    assert response.get_json()["request_id"] == request_id


@pytest.mark.parametrize("incoming", ["bad id", "x" * 129, "a/b", ""])
def test_malformed_incoming_id_replaced(app, incoming):
    response = app.test_client().get("/work", headers={"X-Request-ID": incoming})

    assert response.headers["X-Request-ID"] != incoming
    assert len(response.headers["X-Request-ID"]) == 32


def test_trailing_newline_id_replaced(app):
    """A regex "$" also matches before a final newline, which must not pass."""
    response = app.test_client().get(
        "/work", environ_overrides={"HTTP_X_REQUEST_ID": "req-1\n"}
    )

    assert response.status_code == 200
    assert len(response.headers["X-Request-ID"]) == 32
