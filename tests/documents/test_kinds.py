"""Each kind of document, rendered from the real internships and students services."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pypdf
import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.documents.conftest import PUBLIC_BASE_URL
from tests.documents.helpers import (
    Listener,
    World,
    jobs_named,
    pdf_text,
    report_body,
    request_document,
)


@pytest.fixture(scope="module")
def issued(
    documents_app: Flask, world: World, run_worker: Callable[[], None]
) -> dict[str, dict[str, Any]]:
    """Request one document of each kind, render them all, return body and bytes."""
    client = documents_app.test_client()
    requests = {
        "letter": (
            world.employer_admin,
            "placement_letter",
            {"application_id": world.baraka_application},
        ),
        "summary": (
            world.institution_admin,
            "performance_summary",
            {"application_id": world.amina_application},
        ),
        "report": (world.institution_admin, "placement_report", report_body(world)),
        "report_csv": (
            world.institution_admin,
            "placement_report",
            report_body(world, format="csv"),
        ),
    }
    # The internships worker first appends the ledger that summaries read,
    # and the documents worker issues the certificate the CERTIFIED move asked for.
    run_worker()
    ids = {}
    for name, (actor, kind, body) in requests.items():
        response = request_document(client, actor, kind, **body)
        assert response.status_code == 202, response.get_json()
        ids[name] = (actor, response.get_json()["id"])
    run_worker()

    certificates = client.get(
        "/api/v1/documents",
        query_string={
            "kind": "completion_certificate",
            "application_id": world.amina_application,
        },
        headers=world.amina.headers,
    ).get_json()["items"]
    assert len(certificates) == 1, certificates
    ids["certificate"] = (world.amina, certificates[0]["id"])

    documents = {}
    for name, (actor, document_id) in ids.items():
        body = client.get(f"/api/v1/documents/{document_id}", headers=actor.headers)
        content = client.get(
            f"/api/v1/documents/{document_id}/content", headers=actor.headers
        )
        documents[name] = {
            "body": body.get_json(),
            "response": content,
            "content": content.data,
        }
    return documents


def test_every_kind_is_ready(issued: dict[str, dict[str, Any]]) -> None:
    for name, document in issued.items():
        assert document["body"]["status"] == "READY", (name, document["body"])


def test_certificate_prints_placement_facts(
    issued: dict[str, dict[str, Any]],
) -> None:
    text = pdf_text(issued["certificate"]["content"])
    code = issued["certificate"]["body"]["tracking_code"]

    assert "Certificate of internship completion" in text
    assert "Amina Njoroge" in text
    assert "KU/CS/0001" in text
    assert "Kilima University" in text
    assert "Savanna Labs" in text
    assert "Backend engineering intern" in text
    assert code in text
    assert f"{PUBLIC_BASE_URL}/verify/{code}" in text


def test_certificate_is_pdfa_with_title_and_lang(
    issued: dict[str, dict[str, Any]],
) -> None:
    reader = pypdf.PdfReader(io.BytesIO(issued["certificate"]["content"]))
    xmp = reader.xmp_metadata
    assert xmp is not None
    metadata = xmp.stream.get_data()

    assert reader.metadata.title == "Certificate of internship completion"
    assert reader.trailer["/Root"]["/Lang"] == "en"
    assert b'pdfaid:part="3"' in metadata
    assert b'pdfaid:conformance="U"' in metadata


def test_certificate_came_from_internships_job(
    issued: dict[str, dict[str, Any]], world: World
) -> None:
    requests = jobs_named("documents.request_certificate")

    assert [job["application_id"] for job in requests] == [world.amina_application]
    assert issued["certificate"]["body"]["application_id"] == world.amina_application


def test_letter_prints_offer_terms(issued: dict[str, dict[str, Any]]) -> None:
    text = pdf_text(issued["letter"]["content"])

    assert "Placement offer letter" in text
    assert "Baraka Otieno" in text
    assert "KU/CS/0002" in text
    assert "Nairobi (hybrid)" in text
    assert "25000.00 KES" in text
    assert "12 weeks" in text
    assert issued["letter"]["body"]["tracking_code"] in text


def test_names_with_markup_print_as_text(issued: dict[str, dict[str, Any]]) -> None:
    text = pdf_text(issued["letter"]["content"])

    assert '<img src="http://127.0.0.1:' in text


def test_summary_prints_history_and_skills(
    issued: dict[str, dict[str, Any]],
) -> None:
    text = pdf_text(issued["summary"]["content"])

    assert "Placement performance summary" in text
    assert "Amina Njoroge" in text
    assert "CERTIFIED" in text
    for status in ("APPLIED", "SHORTLISTED", "ACCEPTED", "ACTIVE", "COMPLETED"):
        assert status in text, status
    # The internships service stores an opportunity's skills in lower case.
    assert "In common python" in text
    assert "I build small web services." in text
    assert "<style>body { background: url(http://127.0.0.1:" in text


def test_report_lists_both_placements(
    issued: dict[str, dict[str, Any]], world: World
) -> None:
    # Narrow table columns wrap registration numbers after their slashes.
    text = pdf_text(issued["report"]["content"]).replace("/ ", "/")

    assert "Institution placement report" in text
    assert "Kilima University" in text
    assert "Amina Njoroge" in text
    assert "Baraka Otieno" in text
    assert "KU/CS/0001" in text
    assert "KU/CS/0002" in text
    assert "Placements 2 ACCEPTED 1 CERTIFIED 1" in text
    assert world.start_date.isoformat() in text


def test_report_csv_has_a_row_each(issued: dict[str, dict[str, Any]]) -> None:
    response = issued["report_csv"]["response"]
    rows = list(csv.reader(io.StringIO(response.data.decode())))

    assert response.mimetype == "text/csv"
    assert rows[0][:3] == ["Student", "Registration number", "Course"]
    assert sorted(row[1] for row in rows[1:]) == ["KU/CS/0001", "KU/CS/0002"]
    assert {row[5] for row in rows[1:]} == {"ACCEPTED", "CERTIFIED"}


def test_markup_made_no_request(
    issued: dict[str, dict[str, Any]], listener: Listener
) -> None:
    assert issued["letter"]["body"]["status"] == "READY"
    assert listener.connections == 0


def test_content_has_filename_and_etag(
    issued: dict[str, dict[str, Any]],
) -> None:
    response = issued["certificate"]["response"]
    body = issued["certificate"]["body"]

    assert response.mimetype == "application/pdf"
    filename = f"edulink-completion-certificate-{body['tracking_code']}.pdf"
    assert response.headers["Content-Disposition"] == f"attachment; filename={filename}"
    assert response.headers["ETag"] == f'"{body["sha256"]}"'
    assert body["size"] == len(issued["certificate"]["content"])


def test_content_answers_304_to_its_etag(
    client: FlaskClient, issued: dict[str, dict[str, Any]], world: World
) -> None:
    body = issued["certificate"]["body"]
    response = client.get(
        body["links"]["content"],
        headers={**world.amina.headers, "If-None-Match": f'"{body["sha256"]}"'},
    )

    assert response.status_code == 304


def test_ready_notifies_the_requester(
    issued: dict[str, dict[str, Any]], world: World
) -> None:
    notices = {job["entity_id"]: job for job in jobs_named("notifications.notify")}
    letter = notices[issued["letter"]["body"]["id"]]
    certificate = notices[issued["certificate"]["body"]["id"]]

    assert letter["kind"] == "document_ready"
    assert letter["recipient_user_id"] == str(world.employer_admin.user_id)
    assert certificate["recipient_user_id"] == str(world.amina.user_id)
