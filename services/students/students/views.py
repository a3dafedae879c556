"""HTTP endpoints of the students service. Business rules live in ``services``."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, jsonify, url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from edulink.auth import Role, require_principal
from edulink.caching import (
    IF_MATCH_PARAMETER,
    entity_response,
    entity_tag,
    require_if_match,
)
from edulink.pagination import PageQuerySchema, current_codec, page_body
from students import services
from students.db import db
from students.schemas import (
    ClaimDecisionSchema,
    ClaimPageSchema,
    ClaimQuerySchema,
    ClaimSchema,
    CohortPageSchema,
    CohortSchema,
    DepartmentPageSchema,
    DepartmentSchema,
    InstitutionPageSchema,
    InstitutionQuerySchema,
    InstitutionSchema,
    InstitutionUpdateSchema,
    StudentPageSchema,
    StudentQuerySchema,
    StudentSchema,
    StudentUpdateSchema,
    student_body,
)

students_blp = Blueprint(
    "students", __name__, url_prefix="/api/v1/students", description="Student profiles"
)
institutions_blp = Blueprint(
    "institutions",
    __name__,
    url_prefix="/api/v1/institutions",
    description="Institutions, departments, cohorts and affiliation claims",
)

ANY_USER = tuple(Role)
ADMINS = (Role.system_admin, Role.institution_admin)


# Student profiles


@students_blp.route("/me")
class OwnProfile(MethodView):
    @students_blp.response(200, StudentSchema)
    @students_blp.alt_response(304, description="Not modified")
    def get(self) -> Response:
        """Read your own student profile."""
        actor = require_principal(Role.student)
        student = services.get_own_profile(db.session, actor=actor)
        return entity_response(StudentSchema, student)

    @students_blp.arguments(StudentSchema)
    @students_blp.response(201, StudentSchema)
    def post(self, data: dict[str, Any]) -> Response:
        """Create your own student profile. The email comes from your access token."""
        actor = require_principal(Role.student)
        student = services.create_profile(db.session, actor=actor, data=data)
        db.session.commit()
        location = url_for("students.StudentById", student_id=student.id)
        return entity_response(StudentSchema, student, status=201, location=location)

    @students_blp.arguments(StudentUpdateSchema)
    @students_blp.response(200, StudentSchema)
    @students_blp.doc(parameters=[IF_MATCH_PARAMETER])
    def patch(self, changes: dict[str, Any]) -> Response:
        """Change your own profile. Requires If-Match with the current ETag."""
        actor = require_principal(Role.student)
        student = services.get_own_profile(db.session, actor=actor)
        require_if_match(entity_tag(student.id, student.version))
        services.update_profile(db.session, student=student, changes=changes)
        db.session.commit()
        return entity_response(StudentSchema, student)


@students_blp.route("/me/claims")
class OwnClaims(MethodView):
    @students_blp.arguments(ClaimQuerySchema, location="query")
    @students_blp.response(200, ClaimPageSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """List your affiliation claims, oldest first."""
        actor = require_principal(Role.student)
        page = services.list_own_claims(
            db.session,
            actor=actor,
            codec=current_codec(),
            limit=query["limit"],
            cursor=query["cursor"],
        )
        return page_body(page.items, page.next_cursor)

    @students_blp.arguments(ClaimSchema)
    @students_blp.response(201, ClaimSchema)
    def post(self, data: dict[str, Any]) -> Response:
        """Claim membership of an institution.

        Approved at once when your verified email address is on one of the
        institution's domains; otherwise pending until its admin decides.
        """
        actor = require_principal(Role.student)
        claim = services.create_claim(db.session, actor=actor, data=data)
        db.session.commit()
        return entity_response(ClaimSchema, claim, status=201)


@students_blp.route("")
class StudentCollection(MethodView):
    @students_blp.arguments(StudentQuerySchema, location="query")
    @students_blp.response(200, StudentPageSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """List the students you may see, or look up to 200 by `ids`."""
        actor = require_principal(*ANY_USER)
        if query.get("ids"):
            items = services.batch_students(db.session, actor=actor, ids=query["ids"])
            # Returning a Response skips flask-smorest's marshmallow dump, which
            # student_body replaces.
            return jsonify(items=[student_body(item) for item in items], next=None)
        page = services.list_students(
            db.session,
            actor=actor,
            codec=current_codec(),
            limit=query["limit"],
            cursor=query["cursor"],
            institution_id=query.get("institution_id"),
            verified=query.get("verified"),
        )
        return page_body(page.items, page.next_cursor)


@students_blp.route("/<uuid:student_id>")
class StudentById(MethodView):
    @students_blp.response(200, StudentSchema)
    @students_blp.alt_response(304, description="Not modified")
    def get(self, student_id: uuid.UUID) -> Response:
        """Read one student you may see."""
        actor = require_principal(*ANY_USER)
        student = services.get_student(db.session, actor=actor, student_id=student_id)
        return entity_response(StudentSchema, student)


# Institutions


@institutions_blp.route("")
class InstitutionCollection(MethodView):
    @institutions_blp.arguments(InstitutionQuerySchema, location="query")
    @institutions_blp.response(200, InstitutionPageSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """List institutions. Others than system admins see verified and active ones."""
        actor = require_principal(*ANY_USER)
        page = services.list_institutions(
            db.session,
            actor=actor,
            codec=current_codec(),
            limit=query["limit"],
            cursor=query["cursor"],
            status=query.get("status"),
            q=query.get("q"),
        )
        return page_body(page.items, page.next_cursor)

    @institutions_blp.arguments(InstitutionSchema)
    @institutions_blp.response(201, InstitutionSchema)
    def post(self, data: dict[str, Any]) -> Response:
        """Create an institution (system admins)."""
        actor = require_principal(Role.system_admin)
        institution = services.create_institution(db.session, actor=actor, data=data)
        db.session.commit()
        location = url_for(
            "institutions.InstitutionById", institution_id=institution.id
        )
        return entity_response(
            InstitutionSchema, institution, status=201, location=location
        )


@institutions_blp.route("/<uuid:institution_id>")
class InstitutionById(MethodView):
    @institutions_blp.response(200, InstitutionSchema)
    @institutions_blp.alt_response(304, description="Not modified")
    def get(self, institution_id: uuid.UUID) -> Response:
        """Read one institution."""
        actor = require_principal(*ANY_USER)
        institution = services.get_institution(
            db.session, actor=actor, institution_id=institution_id
        )
        return entity_response(InstitutionSchema, institution)

    @institutions_blp.arguments(InstitutionUpdateSchema)
    @institutions_blp.response(200, InstitutionSchema)
    @institutions_blp.doc(parameters=[IF_MATCH_PARAMETER])
    def patch(self, changes: dict[str, Any], institution_id: uuid.UUID) -> Response:
        """Change an institution. Status and email domains are for system admins."""
        actor = require_principal(*ADMINS)
        institution = services.get_managed_institution(
            db.session, actor=actor, institution_id=institution_id
        )
        require_if_match(entity_tag(institution.id, institution.version))
        services.update_institution(
            db.session, actor=actor, institution=institution, changes=changes
        )
        db.session.commit()
        return entity_response(InstitutionSchema, institution)


@institutions_blp.route("/<uuid:institution_id>/departments")
class Departments(MethodView):
    @institutions_blp.arguments(PageQuerySchema, location="query")
    @institutions_blp.response(200, DepartmentPageSchema)
    def get(self, query: dict[str, Any], institution_id: uuid.UUID) -> Any:
        """List an institution's departments."""
        actor = require_principal(*ANY_USER)
        page = services.list_departments(
            db.session,
            actor=actor,
            institution_id=institution_id,
            codec=current_codec(),
            limit=query["limit"],
            cursor=query["cursor"],
        )
        return page_body(page.items, page.next_cursor)

    @institutions_blp.arguments(DepartmentSchema)
    @institutions_blp.response(201, DepartmentSchema)
    def post(self, data: dict[str, Any], institution_id: uuid.UUID) -> Any:
        """Add a department (the institution's admins and system admins)."""
        actor = require_principal(*ADMINS)
        department = services.create_department(
            db.session, actor=actor, institution_id=institution_id, name=data["name"]
        )
        db.session.commit()
        return department, 201


@institutions_blp.route("/<uuid:institution_id>/departments/<uuid:department_id>")
class DepartmentById(MethodView):
    @institutions_blp.response(204)
    def delete(self, institution_id: uuid.UUID, department_id: uuid.UUID) -> None:
        """Remove a department and its cohorts."""
        actor = require_principal(*ADMINS)
        services.delete_department(
            db.session,
            actor=actor,
            institution_id=institution_id,
            department_id=department_id,
        )
        db.session.commit()


@institutions_blp.route("/<uuid:institution_id>/cohorts")
class Cohorts(MethodView):
    @institutions_blp.arguments(PageQuerySchema, location="query")
    @institutions_blp.response(200, CohortPageSchema)
    def get(self, query: dict[str, Any], institution_id: uuid.UUID) -> Any:
        """List an institution's cohorts."""
        actor = require_principal(*ANY_USER)
        page = services.list_cohorts(
            db.session,
            actor=actor,
            institution_id=institution_id,
            codec=current_codec(),
            limit=query["limit"],
            cursor=query["cursor"],
        )
        return page_body(page.items, page.next_cursor)

    @institutions_blp.arguments(CohortSchema)
    @institutions_blp.response(201, CohortSchema)
    def post(self, data: dict[str, Any], institution_id: uuid.UUID) -> Any:
        """Add a cohort to one of the institution's departments."""
        actor = require_principal(*ADMINS)
        cohort = services.create_cohort(
            db.session, actor=actor, institution_id=institution_id, data=data
        )
        db.session.commit()
        return cohort, 201


@institutions_blp.route("/<uuid:institution_id>/cohorts/<uuid:cohort_id>")
class CohortById(MethodView):
    @institutions_blp.response(204)
    def delete(self, institution_id: uuid.UUID, cohort_id: uuid.UUID) -> None:
        """Remove a cohort."""
        actor = require_principal(*ADMINS)
        services.delete_cohort(
            db.session, actor=actor, institution_id=institution_id, cohort_id=cohort_id
        )
        db.session.commit()


@institutions_blp.route("/<uuid:institution_id>/claims")
class InstitutionClaims(MethodView):
    @institutions_blp.arguments(ClaimQuerySchema, location="query")
    @institutions_blp.response(200, ClaimPageSchema)
    def get(self, query: dict[str, Any], institution_id: uuid.UUID) -> Any:
        """List affiliation claims to an institution, filtered by status."""
        actor = require_principal(*ADMINS)
        page = services.list_institution_claims(
            db.session,
            actor=actor,
            institution_id=institution_id,
            codec=current_codec(),
            limit=query["limit"],
            cursor=query["cursor"],
            status=query.get("status"),
        )
        return page_body(page.items, page.next_cursor)


@institutions_blp.route("/<uuid:institution_id>/claims/<uuid:claim_id>/decision")
class ClaimDecision(MethodView):
    @institutions_blp.arguments(ClaimDecisionSchema)
    @institutions_blp.response(200, ClaimSchema)
    def post(
        self, data: dict[str, Any], institution_id: uuid.UUID, claim_id: uuid.UUID
    ) -> Any:
        """Approve or reject a pending claim; a rejection needs a reason."""
        actor = require_principal(*ADMINS)
        claim = services.decide_claim(
            db.session,
            actor=actor,
            institution_id=institution_id,
            claim_id=claim_id,
            decision=data["decision"],
            reason=data.get("reason"),
        )
        db.session.commit()
        return claim
