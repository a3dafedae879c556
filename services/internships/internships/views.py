"""HTTP endpoints of the internships service. Business rules live elsewhere.

Employers and opportunities are in :mod:`internships.services`, applications
in :mod:`internships.applications`.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from flask import Response, current_app, json, request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from edulink.auth import Role, bearer_token, current_principal, require_principal
from edulink.caching import (
    IF_MATCH_PARAMETER,
    entity_response,
    entity_tag,
    require_if_match,
)
from edulink.pagination import current_codec, page_body
from internships import applications, services
from internships.db import db
from internships.schemas import (
    ApplicationPageSchema,
    ApplicationQuerySchema,
    ApplicationSchema,
    EmployerApplicationQuerySchema,
    EmployerOpportunityQuerySchema,
    EmployerPageSchema,
    EmployerQuerySchema,
    EmployerSchema,
    EmployerUpdateSchema,
    OpportunityPageSchema,
    OpportunitySchema,
    OpportunityUpdateSchema,
    PlacementQuerySchema,
    SearchQuerySchema,
    TransitionSchema,
)
from internships.student_directory import StudentDirectory

employers_blp = Blueprint(
    "employers", __name__, url_prefix="/api/v1/employers", description="Employers"
)
opportunities_blp = Blueprint(
    "opportunities",
    __name__,
    url_prefix="/api/v1/opportunities",
    description="Opportunities, public search and applying",
)
applications_blp = Blueprint(
    "applications",
    __name__,
    url_prefix="/api/v1/applications",
    description="Applications and their lifecycle",
)
placements_blp = Blueprint(
    "placements",
    __name__,
    url_prefix="/api/v1/placements",
    description="Placements of an institution's students",
)

DIRECTORY_EXTENSION = "internships.student_directory"
ANY_USER = tuple(Role)
EMPLOYER_MANAGERS = (Role.system_admin, Role.employer_admin)
IDEMPOTENCY_KEY = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": "Unique per intended request; a retry with the same key and "
    "body returns the first response and creates nothing",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
}
PUBLIC = {"security": [{}, {"bearerAuth": []}]}


def _directory() -> StudentDirectory:
    return current_app.extensions[DIRECTORY_EXTENSION]


# Employers


@employers_blp.route("")
class EmployerCollection(MethodView):
    @employers_blp.arguments(EmployerQuerySchema, location="query")
    @employers_blp.response(200, EmployerPageSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """List employers: approved and active ones, plus your own."""
        actor = require_principal(*ANY_USER)
        page = services.list_employers(
            db.session,
            actor=actor,
            codec=current_codec(),
            limit=query["limit"],
            cursor=query["cursor"],
            status=query.get("status"),
        )
        return page_body(page.items, page.next_cursor)

    @employers_blp.arguments(EmployerSchema)
    @employers_blp.response(201, EmployerSchema)
    def post(self, data: dict[str, Any]) -> Response:
        """Register an employer. Employer admins' registrations await approval."""
        actor = require_principal(*EMPLOYER_MANAGERS)
        employer = services.create_employer(db.session, actor=actor, data=data)
        db.session.commit()
        location = url_for("employers.EmployerById", employer_id=employer.id)
        return entity_response(EmployerSchema, employer, status=201, location=location)


@employers_blp.route("/<uuid:employer_id>")
class EmployerById(MethodView):
    @employers_blp.response(200, EmployerSchema)
    @employers_blp.alt_response(304, description="Not modified")
    def get(self, employer_id: uuid.UUID) -> Response:
        """Read one employer."""
        actor = require_principal(*ANY_USER)
        employer = services.get_employer(
            db.session, actor=actor, employer_id=employer_id
        )
        return entity_response(EmployerSchema, employer)

    @employers_blp.arguments(EmployerUpdateSchema)
    @employers_blp.response(200, EmployerSchema)
    @employers_blp.doc(parameters=[IF_MATCH_PARAMETER])
    def patch(self, changes: dict[str, Any], employer_id: uuid.UUID) -> Response:
        """Change an employer. Its status is for system admins."""
        actor = require_principal(*EMPLOYER_MANAGERS)
        employer = services.get_managed_employer(
            db.session, actor=actor, employer_id=employer_id
        )
        require_if_match(entity_tag(employer.id, employer.version))
        services.update_employer(
            db.session, actor=actor, employer=employer, changes=changes
        )
        db.session.commit()
        return entity_response(EmployerSchema, employer)


@employers_blp.route("/<uuid:employer_id>/opportunities")
class EmployerOpportunities(MethodView):
    @employers_blp.arguments(EmployerOpportunityQuerySchema, location="query")
    @employers_blp.response(200, OpportunityPageSchema)
    @employers_blp.doc(**PUBLIC)
    def get(self, query: dict[str, Any], employer_id: uuid.UUID) -> Any:
        """List an employer's opportunities, newest first; drafts for its staff."""
        page = services.list_employer_opportunities(
            db.session,
            actor=current_principal(),
            employer_id=employer_id,
            codec=current_codec(),
            limit=query["limit"],
            cursor=query["cursor"],
            status=query.get("status"),
        )
        return page_body(page.items, page.next_cursor)


@employers_blp.route("/<uuid:employer_id>/applications")
class EmployerApplications(MethodView):
    @employers_blp.arguments(EmployerApplicationQuerySchema, location="query")
    @employers_blp.response(200, ApplicationPageSchema)
    def get(self, query: dict[str, Any], employer_id: uuid.UUID) -> Any:
        """List applications to an employer's opportunities, newest first."""
        actor = require_principal(*ANY_USER)
        page = applications.list_employer_applications(
            db.session,
            actor=actor,
            employer_id=employer_id,
            codec=current_codec(),
            limit=query["limit"],
            cursor=query["cursor"],
            status=query.get("status"),
            opportunity_id=query.get("opportunity_id"),
        )
        return page_body(page.items, page.next_cursor)


# Opportunities


def _search_tag(items: list[Any], next_cursor: str | None) -> str:
    """Return an ETag over the page's ids and versions and its next cursor."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(f"{item.id}:{item.version};".encode())
    digest.update((next_cursor or "").encode())
    return digest.hexdigest()[:32]


def _public_cache(response: Response, tag: str) -> Response:
    response.set_etag(tag)
    max_age = current_app.extensions["edulink.settings"].search_max_age
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    return response


@opportunities_blp.route("")
class OpportunityCollection(MethodView):
    @opportunities_blp.arguments(SearchQuerySchema, location="query")
    @opportunities_blp.response(200, OpportunityPageSchema)
    @opportunities_blp.alt_response(304, description="Not modified")
    @opportunities_blp.doc(**PUBLIC)
    def get(self, query: dict[str, Any]) -> Response:
        """Search OPEN opportunities, nearest deadline first. No token needed.

        The response is the same for every caller and carries a public
        Cache-Control and an ETag over the page's contents.
        """
        page = services.search_opportunities(
            db.session,
            codec=current_codec(),
            limit=query["limit"],
            cursor=query["cursor"],
            q=query.get("q"),
            skills=query.get("skills") or [],
            location_type=query.get("location_type"),
            location=query.get("location"),
            deadline_after=query.get("deadline_after"),
            deadline_before=query.get("deadline_before"),
        )
        tag = _search_tag(page.items, page.next_cursor)
        if request.if_none_match.contains(tag):
            return _public_cache(Response(status=304), tag)
        body, _status, headers = page_body(page.items, page.next_cursor)
        body["items"] = OpportunitySchema(many=True).dump(body["items"])
        response = Response(json.dumps(body), mimetype="application/json")
        response.headers.update(headers)
        return _public_cache(response, tag)

    @opportunities_blp.arguments(OpportunitySchema)
    @opportunities_blp.response(201, OpportunitySchema)
    def post(self, data: dict[str, Any]) -> Response:
        """Create a DRAFT opportunity for an employer you administer."""
        actor = require_principal(*EMPLOYER_MANAGERS)
        opportunity = services.create_opportunity(db.session, actor=actor, data=data)
        db.session.commit()
        location = url_for(
            "opportunities.OpportunityById", opportunity_id=opportunity.id
        )
        return entity_response(
            OpportunitySchema, opportunity, status=201, location=location
        )


@opportunities_blp.route("/<uuid:opportunity_id>")
class OpportunityById(MethodView):
    @opportunities_blp.response(200, OpportunitySchema)
    @opportunities_blp.alt_response(304, description="Not modified")
    @opportunities_blp.doc(**PUBLIC)
    def get(self, opportunity_id: uuid.UUID) -> Response:
        """Read one opportunity. Drafts are visible to the employer's staff only."""
        opportunity = services.get_opportunity(
            db.session, actor=current_principal(), opportunity_id=opportunity_id
        )
        return entity_response(OpportunitySchema, opportunity)

    @opportunities_blp.arguments(OpportunityUpdateSchema)
    @opportunities_blp.response(200, OpportunitySchema)
    @opportunities_blp.doc(parameters=[IF_MATCH_PARAMETER])
    def patch(self, changes: dict[str, Any], opportunity_id: uuid.UUID) -> Response:
        """Change an opportunity, or its status (DRAFT, OPEN, CLOSED)."""
        actor = require_principal(*EMPLOYER_MANAGERS)
        opportunity = services.get_managed_opportunity(
            db.session, actor=actor, opportunity_id=opportunity_id
        )
        require_if_match(entity_tag(opportunity.id, opportunity.version))
        services.update_opportunity(
            db.session, opportunity=opportunity, changes=changes
        )
        db.session.commit()
        return entity_response(OpportunitySchema, opportunity)


@opportunities_blp.route("/<uuid:opportunity_id>/applications")
class OpportunityApplications(MethodView):
    @opportunities_blp.arguments(ApplicationSchema)
    @opportunities_blp.response(201, ApplicationSchema)
    @opportunities_blp.doc(parameters=[IDEMPOTENCY_KEY])
    def post(self, data: dict[str, Any], opportunity_id: uuid.UUID) -> Response:
        """Apply to an OPEN opportunity before its deadline.

        Your student profile is copied into the application as it is now.
        """
        actor = require_principal(Role.student)
        key = request.headers.get("Idempotency-Key")
        fingerprint = applications.request_fingerprint(opportunity_id, data)
        if key is not None:
            stored = applications.find_stored_response(
                db.session, actor=actor, key=key, fingerprint=fingerprint
            )
            if stored is not None:
                return _replay(stored)

        application = applications.apply(
            db.session,
            actor=actor,
            opportunity_id=opportunity_id,
            data=data,
            directory=_directory(),
            student_token=bearer_token(request.headers["Authorization"]),
        )
        location = url_for(
            "applications.ApplicationById", application_id=application.id
        )
        if key is not None:
            applications.store_response(
                db.session,
                actor=actor,
                key=key,
                fingerprint=fingerprint,
                response=applications.StoredResponse(
                    201, ApplicationSchema().dump(application), location
                ),
            )
        db.session.commit()
        return entity_response(
            ApplicationSchema, application, status=201, location=location
        )


def _replay(stored: applications.StoredResponse) -> Response:
    response = Response(
        json.dumps(stored.body), status=stored.status_code, mimetype="application/json"
    )
    if stored.location:
        response.headers["Location"] = stored.location
    response.headers["Idempotent-Replayed"] = "true"
    return response


# Applications


@applications_blp.route("")
class OwnApplications(MethodView):
    @applications_blp.arguments(ApplicationQuerySchema, location="query")
    @applications_blp.response(200, ApplicationPageSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """List your own applications, newest first."""
        actor = require_principal(Role.student)
        page = applications.list_own_applications(
            db.session,
            actor=actor,
            codec=current_codec(),
            limit=query["limit"],
            cursor=query["cursor"],
            status=query.get("status"),
        )
        return page_body(page.items, page.next_cursor)


@applications_blp.route("/<uuid:application_id>")
class ApplicationById(MethodView):
    @applications_blp.response(200, ApplicationSchema)
    @applications_blp.alt_response(304, description="Not modified")
    def get(self, application_id: uuid.UUID) -> Response:
        """Read one application you may see."""
        actor = require_principal(*ANY_USER)
        application = applications.get_application(
            db.session, actor=actor, application_id=application_id
        )
        return entity_response(ApplicationSchema, application)


@applications_blp.route("/<uuid:application_id>/transitions")
class ApplicationTransitions(MethodView):
    @applications_blp.arguments(TransitionSchema)
    @applications_blp.response(200, ApplicationSchema)
    @applications_blp.doc(parameters=[IF_MATCH_PARAMETER])
    def post(self, data: dict[str, Any], application_id: uuid.UUID) -> Response:
        """Move an application to another status. Requires If-Match.

        A move the table does not allow is 409 and one you may not make is
        403; both list the states you may move it to in ``allowed``.
        """
        actor = require_principal(*ANY_USER)
        application = applications.get_application(
            db.session, actor=actor, application_id=application_id, for_update=True
        )
        require_if_match(entity_tag(application.id, application.version))
        applications.transition(
            db.session, actor=actor, application=application, data=data
        )
        db.session.commit()
        return entity_response(ApplicationSchema, application)


# Placements


@placements_blp.route("")
class InstitutionPlacements(MethodView):
    @placements_blp.arguments(PlacementQuerySchema, location="query")
    @placements_blp.response(200, ApplicationPageSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """List the placements of your institution's students, newest first."""
        actor = require_principal(*ANY_USER)
        page = applications.list_institution_placements(
            db.session,
            actor=actor,
            institution_id=query["institution_id"],
            codec=current_codec(),
            limit=query["limit"],
            cursor=query["cursor"],
            status=query.get("status"),
        )
        return page_body(page.items, page.next_cursor)
