"""The facts documents print, read from the internships and students services.

Every read goes through the services' REST APIs with this service's
credential, except the list of an institution's placements. The internships
service shows that list only to the institution's admins and system admins,
so it is read with the requester's own token. Students are looked up in batches of
up to 200 ids per call.

What a document prints is kept as a JSON snapshot with the document. The
SHA-256 of the snapshot shows whether a new request is for changed data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from edulink.errors import Conflict, NotFound, UnprocessableContent
from edulink.http import ServiceClient, UpstreamClientError

log = logging.getLogger(__name__)

STUDENT_BATCH_SIZE = 200
PLACEMENT_PAGE_SIZE = 100
TIMELINE_LIMIT = 100


@dataclass(frozen=True)
class PlacementFacts:
    """One placement as the internships and students services describe it now."""

    application: dict[str, Any]
    student: dict[str, Any]
    institution: dict[str, Any] | None
    opportunity: dict[str, Any] | None
    timeline: list[dict[str, Any]] | None

    @property
    def application_id(self) -> uuid.UUID:
        return uuid.UUID(self.application["id"])

    @property
    def status(self) -> str:
        return self.application["status"]

    @property
    def student_user_id(self) -> uuid.UUID:
        return uuid.UUID(self.student["user_id"])

    @property
    def employer_id(self) -> uuid.UUID:
        return uuid.UUID(self.application["employer_id"])

    @property
    def institution_id(self) -> uuid.UUID | None:
        value = self.application.get("institution_id")
        return uuid.UUID(value) if value else None


@dataclass(frozen=True)
class ReportFacts:
    """An institution and its placements that overlap a period."""

    institution: dict[str, Any]
    period_start: date
    period_end: date
    placements: list[dict[str, Any]]


class Sources(Protocol):
    """Source of the data that documents print."""

    def placement(
        self, application_id: uuid.UUID, *, opportunity: bool, timeline: bool
    ) -> PlacementFacts:
        """Read one application with its student and institution.

        ``opportunity`` adds the opportunity's details, ``timeline`` the
        application's status history. Raises NotFound for an unknown id.
        """
        ...

    def report(
        self,
        institution_id: uuid.UUID,
        period_start: date,
        period_end: date,
        *,
        requester_token: str,
    ) -> ReportFacts:
        """Read an institution's placements that overlap the period."""
        ...


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def snapshot_hash(snapshot: dict[str, Any]) -> str:
    """Return the SHA-256 of the snapshot's canonical JSON, in hex."""
    return hashlib.sha256(canonical_json(snapshot).encode()).hexdigest()


class HttpSources:
    """Reads the internships and students REST APIs through two service clients."""

    def __init__(
        self,
        *,
        internships: ServiceClient,
        students: ServiceClient,
        max_report_placements: int,
    ) -> None:
        self.internships = internships
        self.students = students
        self.max_report_placements = max_report_placements

    def placement(
        self, application_id: uuid.UUID, *, opportunity: bool, timeline: bool
    ) -> PlacementFacts:
        application = _get_or_not_found(
            self.internships,
            f"/api/v1/applications/{application_id}",
            f"Application {application_id} does not exist.",
        )
        students = self.student_batch([application["student_id"]])
        student = students.get(application["student_id"])
        if student is None:
            raise Conflict(
                f"The student profile {application['student_id']} of application "
                f"{application_id} no longer exists, so no document can name it."
            )
        return PlacementFacts(
            application=application,
            student=student,
            institution=self._institution(application.get("institution_id")),
            opportunity=self._opportunity(application) if opportunity else None,
            timeline=self._timeline(application_id) if timeline else None,
        )

    def report(
        self,
        institution_id: uuid.UUID,
        period_start: date,
        period_end: date,
        *,
        requester_token: str,
    ) -> ReportFacts:
        institution = self._institution(str(institution_id))
        assert institution is not None
        placements = [
            placement
            for placement in self._placements(institution_id, requester_token)
            if overlaps(placement, period_start, period_end)
        ]
        students = self.student_batch([p["student_id"] for p in placements])
        return ReportFacts(
            institution=institution,
            period_start=period_start,
            period_end=period_end,
            placements=[
                report_row(p, students.get(p["student_id"])) for p in placements
            ],
        )

    def student_batch(self, student_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Return the student profiles of ``student_ids`` by id, 200 ids per call."""
        unique_ids = list(dict.fromkeys(student_ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(unique_ids), STUDENT_BATCH_SIZE):
            chunk = unique_ids[start : start + STUDENT_BATCH_SIZE]
            body = self.students.get_json(
                "/api/v1/students", params={"ids": ",".join(chunk)}
            )
            for item in body["items"]:
                found[item["id"]] = item
        return found

    def _institution(self, institution_id: str | None) -> dict[str, Any] | None:
        if not institution_id:
            return None
        return _get_or_not_found(
            self.students,
            f"/api/v1/institutions/{institution_id}",
            f"Institution {institution_id} does not exist.",
        )

    def _opportunity(self, application: dict[str, Any]) -> dict[str, Any]:
        opportunity_id = application["opportunity"]["id"]
        return _get_or_not_found(
            self.internships,
            f"/api/v1/opportunities/{opportunity_id}",
            f"Opportunity {opportunity_id} does not exist.",
        )

    def _timeline(self, application_id: uuid.UUID) -> list[dict[str, Any]]:
        body = self.internships.get_json(
            "/api/v1/internships/ledger",
            params={
                "entity_type": "application",
                "entity_id": str(application_id),
                "limit": TIMELINE_LIMIT,
            },
        )
        return [
            {"status": entry["new"]["status"], "date": entry["occurred_at"][:10]}
            for entry in body["items"]
            if isinstance(entry.get("new"), dict) and "status" in entry["new"]
        ]

    def _placements(
        self, institution_id: uuid.UUID, requester_token: str
    ) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {
            "institution_id": str(institution_id),
            "limit": PLACEMENT_PAGE_SIZE,
        }
        headers = {"Authorization": f"Bearer {requester_token}"}
        seen = 0
        while True:
            try:
                body = self.internships.get_json(
                    "/api/v1/placements", params=params, headers=headers
                )
            except UpstreamClientError as error:
                if error.upstream_status == 404:
                    raise NotFound(
                        f"No placements of institution {institution_id} are visible "
                        "to you."
                    ) from None
                raise
            for item in body["items"]:
                seen += 1
                if seen > self.max_report_placements:
                    raise UnprocessableContent(
                        f"The institution has more than {self.max_report_placements} "
                        "placements to scan. Ask for a shorter period."
                    )
                yield item
            if not body.get("next"):
                return
            params["cursor"] = body["next"]


def _get_or_not_found(client: ServiceClient, path: str, detail: str) -> Any:
    try:
        return client.get_json(path)
    except UpstreamClientError as error:
        if error.upstream_status == 404:
            raise NotFound(detail) from None
        raise


def overlaps(placement: dict[str, Any], period_start: date, period_end: date) -> bool:
    """Tell whether a placement falls in the period.

    A placement with both dates overlaps when it starts by the period's end
    and ends on or after its start. One without dates counts when it was
    created within the period.
    """
    start, end = placement.get("start_date"), placement.get("end_date")
    if start and end:
        return date.fromisoformat(start) <= period_end and (
            date.fromisoformat(end) >= period_start
        )
    created = date.fromisoformat(placement["created_at"][:10])
    return period_start <= created <= period_end


def report_row(
    placement: dict[str, Any], student: dict[str, Any] | None
) -> dict[str, Any]:
    """Return the report's line for one placement.

    The name falls back to the application's copy when the profile is gone.
    """
    snapshot = placement.get("student") or {}
    opportunity = placement["opportunity"]
    return {
        "application_id": placement["id"],
        "student_name": (student or snapshot).get("full_name") or "",
        "registration_number": (student or {}).get("registration_number"),
        "course": (student or snapshot).get("course"),
        "employer": opportunity["employer"]["name"],
        "opportunity": opportunity["title"],
        "status": placement["status"],
        "start_date": placement.get("start_date"),
        "end_date": placement.get("end_date"),
    }
