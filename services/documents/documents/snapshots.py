"""Printed data of each kind of document, cut from the facts the sources return.

A snapshot holds only printed fields, so its hash changes exactly when the
printed data changes. Dates are ISO strings, so the snapshot is plain JSON.
"""

from __future__ import annotations

from typing import Any

from documents.models import DocumentKind
from documents.sources import PlacementFacts, ReportFacts

# The application statuses in which each placement document may be issued.
ISSUABLE_STATUSES: dict[DocumentKind, tuple[str, ...]] = {
    DocumentKind.PLACEMENT_LETTER: ("ACCEPTED", "ACTIVE", "COMPLETED", "CERTIFIED"),
    DocumentKind.COMPLETION_CERTIFICATE: ("CERTIFIED",),
    DocumentKind.PERFORMANCE_SUMMARY: (
        "ACTIVE",
        "COMPLETED",
        "CERTIFIED",
        "TERMINATED",
    ),
}

# Sources each placement kind reads beyond the application, student and institution.
NEEDS_OPPORTUNITY = frozenset(
    {DocumentKind.PLACEMENT_LETTER, DocumentKind.PERFORMANCE_SUMMARY}
)
NEEDS_TIMELINE = frozenset({DocumentKind.PERFORMANCE_SUMMARY})

TITLES = {
    DocumentKind.PLACEMENT_LETTER: "Placement offer letter",
    DocumentKind.COMPLETION_CERTIFICATE: "Certificate of internship completion",
    DocumentKind.PERFORMANCE_SUMMARY: "Placement performance summary",
    DocumentKind.PLACEMENT_REPORT: "Institution placement report",
}


def placement_snapshot(kind: DocumentKind, facts: PlacementFacts) -> dict[str, Any]:
    """Return what a letter, certificate or summary of this placement prints."""
    application = facts.application
    student = facts.student
    snapshot: dict[str, Any] = {
        "application_id": application["id"],
        "student": {
            "full_name": student["full_name"],
            "registration_number": student.get("registration_number"),
            "course": student.get("course"),
        },
        "institution": facts.institution["name"] if facts.institution else None,
        "employer": application["opportunity"]["employer"]["name"],
        "position": application["opportunity"]["title"],
        "start_date": application.get("start_date"),
        "end_date": application.get("end_date"),
    }
    if kind in NEEDS_OPPORTUNITY:
        assert facts.opportunity is not None
        snapshot.update(_opportunity_details(facts.opportunity))
    if kind == DocumentKind.PLACEMENT_LETTER:
        snapshot["student"]["year_of_study"] = student.get("year_of_study")
    if kind == DocumentKind.PERFORMANCE_SUMMARY:
        snapshot.update(
            status=application["status"],
            reason=application.get("reason"),
            student_skills=list(student.get("skills") or []),
            cover_letter=application.get("cover_letter"),
            timeline=facts.timeline or [],
        )
    return snapshot


def _opportunity_details(opportunity: dict[str, Any]) -> dict[str, Any]:
    return {
        "location": opportunity.get("location"),
        "location_type": opportunity.get("location_type"),
        "stipend": opportunity.get("stipend"),
        "skills": list(opportunity.get("skills") or []),
    }


def report_snapshot(facts: ReportFacts) -> dict[str, Any]:
    """Return what an institution report prints, placements in a stable order."""
    rows = sorted(
        facts.placements,
        key=lambda row: (
            row["student_name"].casefold(),
            row["start_date"] or "",
            row["application_id"],
        ),
    )
    return {
        "institution": {
            "id": facts.institution["id"],
            "name": facts.institution["name"],
        },
        "period": {
            "start": facts.period_start.isoformat(),
            "end": facts.period_end.isoformat(),
        },
        "placements": rows,
    }
