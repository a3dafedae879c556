"""A document's states, repeated requests, failures and the certificate limit."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from documents.contracts import CERTIFICATE_REQUEST
from documents.db import db
from documents.jobs import TOOLKIT_EXTENSION, Toolkit
from documents.pdf_process import MIB, IsolatedRenderer, RenderLimits
from edulink.jobs import Queue
from tests.documents.helpers import (
    PROBLEM_JSON,
    Person,
    World,
    job_outcome,
    report_body,
    request_document,
)


class ObservingRenderer:
    """Wraps a renderer and records a document's API status while it renders.

    Only renders whose HTML contains ``marker`` (its tracking code) count.
    """

    def __init__(self, inner: Any, marker: str, look: Callable[[], str]) -> None:
        self.inner = inner
        self.marker = marker
        self.look = look
        self.seen: list[str] = []

    def render(self, html: str, *, pdf_variant: str | None) -> bytes:
        if self.marker in html:
            self.seen.append(self.look())
        return self.inner.render(html, pdf_variant=pdf_variant)


@pytest.fixture
def tools(documents_app: Flask) -> Toolkit:
    return documents_app.extensions[TOOLKIT_EXTENSION]


def _status(client: FlaskClient, actor: Person, document_id: str) -> str:
    response = client.get(f"/api/v1/documents/{document_id}", headers=actor.headers)
    return response.get_json()["status"]


def _update_profile(students_app: Flask, student: Person, **changes: Any) -> None:
    client = students_app.test_client()
    current = client.get("/api/v1/students/me", headers=student.headers)
    response = client.patch(
        "/api/v1/students/me",
        json=changes,
        headers={**student.headers, "If-Match": current.headers["ETag"]},
    )
    assert response.status_code == 200, response.get_json()


def test_request_answers_202_pending(client: FlaskClient, world: World) -> None:
    response = request_document(
        client,
        world.baraka,
        "placement_letter",
        application_id=world.baraka_application,
    )
    body = response.get_json()

    assert response.status_code == 202
    assert response.headers["Location"] == f"/api/v1/documents/{body['id']}"
    assert body["status"] == "PENDING"
    assert body["tracking_code"].startswith("EDL-L-")
    assert "content" not in body["links"]


def test_content_of_pending_document_conflicts(
    client: FlaskClient, world: World
) -> None:
    document = request_document(
        client,
        world.baraka,
        "placement_letter",
        application_id=world.baraka_application,
    ).get_json()
    response = client.get(
        f"/api/v1/documents/{document['id']}/content", headers=world.baraka.headers
    )

    assert response.status_code == 409
    assert response.get_json()["status_now"] == "PENDING"


def test_render_passes_through_processing(
    client: FlaskClient,
    world: World,
    tools: Toolkit,
    run_worker: Callable[[], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    document = request_document(
        client,
        world.baraka,
        "placement_letter",
        application_id=world.baraka_application,
    ).get_json()
    observer = ObservingRenderer(
        tools.renderer,
        document["tracking_code"],
        lambda: _status(client, world.baraka, document["id"]),
    )
    monkeypatch.setattr(tools, "renderer", observer)

    run_worker()
    ready = client.get(
        f"/api/v1/documents/{document['id']}", headers=world.baraka.headers
    ).get_json()

    assert observer.seen == ["PROCESSING"]
    assert ready["status"] == "READY"
    assert ready["issued_at"] is not None
    assert ready["links"]["content"].endswith("/content")


def test_unchanged_request_returns_existing(client: FlaskClient, world: World) -> None:
    first = request_document(
        client,
        world.baraka,
        "placement_letter",
        application_id=world.baraka_application,
    )
    again = request_document(
        client,
        world.employer_admin,
        "placement_letter",
        application_id=world.baraka_application,
    )

    assert again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Location"] == first.headers["Location"]


def test_changed_data_makes_new_document(
    client: FlaskClient, world: World, students_app: Flask
) -> None:
    before = request_document(
        client,
        world.baraka,
        "placement_letter",
        application_id=world.baraka_application,
    ).get_json()
    _update_profile(students_app, world.baraka, course="BSc Software Engineering")

    after = request_document(
        client,
        world.baraka,
        "placement_letter",
        application_id=world.baraka_application,
    )

    assert after.status_code == 202
    assert after.get_json()["id"] != before["id"]
    assert after.get_json()["source_hash"] != before["source_hash"]


def test_render_over_bound_fails_cleanly(
    client: FlaskClient,
    world: World,
    tools: Toolkit,
    run_worker: Callable[[], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hurried = IsolatedRenderer(
        limits=RenderLimits(timeout=0.01, memory_bytes=512 * MIB),
        assets=tools.fonts.assets(),
    )
    monkeypatch.setattr(tools, "renderer", hurried)
    summary = {"application_id": world.amina_application}
    failed = request_document(
        client, world.amina, "performance_summary", **summary
    ).get_json()
    run_worker()
    monkeypatch.undo()

    # The same worker code renders the next request; FAILED documents do not
    # count as existing, so the same data gets a new document.
    retried = request_document(client, world.amina, "performance_summary", **summary)
    run_worker()
    failed_now = client.get(
        f"/api/v1/documents/{failed['id']}", headers=world.amina.headers
    ).get_json()

    assert failed_now["status"] == "FAILED"
    assert "longer than the 0.01 s limit" in failed_now["failure_reason"]
    assert retried.status_code == 202
    assert _status(client, world.amina, retried.get_json()["id"]) == "READY"


def test_job_for_unknown_application_fails(
    world: World, run_worker: Callable[[], None]
) -> None:
    unknown = uuid.uuid4()
    assert db.engine is not None
    with Session(db.engine) as session, session.begin():
        Queue("documents", session=session).enqueue_call(
            CERTIFICATE_REQUEST,
            kwargs={"application_id": unknown},
            job_id=f"test:{unknown}",
        )

    run_worker()
    status, error = job_outcome(f"test:{unknown}")

    assert status == "failed"
    assert f"Application {unknown} does not exist." in (error or "")


def test_certificate_needs_certified_application(
    client: FlaskClient, world: World
) -> None:
    response = request_document(
        client,
        world.baraka,
        "completion_certificate",
        application_id=world.baraka_application,
    )
    body = response.get_json()

    assert response.status_code == 409
    assert response.mimetype == PROBLEM_JSON
    assert body["status_now"] == "ACCEPTED"
    assert body["allowed_statuses"] == ["CERTIFIED"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "placement_letter"}, "application_id"),
        ({"kind": "placement_letter", "format": "csv"}, "application_id"),
        ({"kind": "placement_report"}, "institution_id"),
        ({"kind": "brochure"}, "kind"),
    ],
)
def test_invalid_request_is_422(
    client: FlaskClient, world: World, body: dict[str, Any], field: str
) -> None:
    response = client.post(
        "/api/v1/documents", json=body, headers=world.system_admin.headers
    )

    assert response.status_code == 422
    assert field in str(response.get_json())


def test_report_period_must_be_ordered(client: FlaskClient, world: World) -> None:
    body = report_body(world, period_start="2027-01-01", period_end="2026-01-01")
    response = request_document(
        client, world.institution_admin, "placement_report", **body
    )

    assert response.status_code == 422


def test_at_most_two_certificates(
    client: FlaskClient,
    world: World,
    students_app: Flask,
    run_worker: Callable[[], None],
) -> None:
    # Last in this module: it renames Amina twice. The worker issues the first
    # certificate, which the CERTIFIED move asked for.
    run_worker()
    certificate = {"application_id": world.amina_application}
    first = request_document(
        client, world.amina, "completion_certificate", **certificate
    )
    _update_profile(students_app, world.amina, full_name="Amina W. Njoroge")
    second = request_document(
        client, world.amina, "completion_certificate", **certificate
    )
    _update_profile(students_app, world.amina, full_name="Amina Wanjiru Njoroge")
    third = request_document(
        client, world.amina, "completion_certificate", **certificate
    )

    assert first.status_code == 200
    assert second.status_code == 202
    assert third.status_code == 409
    assert third.get_json()["issued"] == 2
