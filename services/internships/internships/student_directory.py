"""Reading student profiles from the students service, for application snapshots."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from edulink.errors import UnprocessableContent
from edulink.http import ServiceClient, UpstreamClientError

log = logging.getLogger(__name__)

OWN_PROFILE_PATH = "/api/v1/students/me"


class StudentDirectory(Protocol):
    """Source of the student facts an application keeps."""

    def snapshot(self, *, student_token: str) -> dict[str, Any]:
        """Return the calling student's snapshot, keyed as in :func:`build_snapshot`."""
        ...


def build_snapshot(
    profile: dict[str, Any], institution: dict[str, Any] | None
) -> dict[str, Any]:
    """Keep the profile fields an employer sees: name, email, course, year, skills."""
    return {
        "student_id": profile["id"],
        "full_name": profile["full_name"],
        "email": profile["email"],
        "course": profile.get("course"),
        "year_of_study": profile.get("year_of_study"),
        "skills": list(profile.get("skills") or []),
        "institution": (
            {"id": institution["id"], "name": institution["name"]}
            if institution
            else None
        ),
    }


class HttpStudentDirectory:
    """Reads the students service's REST API through a :class:`ServiceClient`.

    The profile is read with the student's own token from ``/students/me``,
    because a token names a user and the service looks profiles up by user
    only there. The institution is read with the client's service token.
    """

    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    def snapshot(self, *, student_token: str) -> dict[str, Any]:
        try:
            profile = self.client.get_json(
                OWN_PROFILE_PATH, headers={"Authorization": f"Bearer {student_token}"}
            )
        except UpstreamClientError as error:
            if error.upstream_status == 404:
                raise UnprocessableContent(
                    "You have no student profile yet. Create it in the students "
                    "service before applying."
                ) from None
            raise
        institution = None
        if profile.get("institution_id"):
            institution = self.client.get_json(
                f"/api/v1/institutions/{profile['institution_id']}"
            )
        return build_snapshot(profile, institution)
