"""Business rules of the students service.

Functions take an explicit session and the acting principal, enforce who may do
what, and raise domain errors from ``edulink.errors``. Callers commit.
An object the actor may not see raises NotFound, never Forbidden, so ids of
other people's records cannot be probed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from edulink.auth import Principal, Role
from edulink.errors import Conflict, Forbidden, NotFound, UnprocessableContent
from edulink.pagination import CursorCodec, Page, keyset_page, scope_of
from students.jobs import enqueue_claim_decided
from students.models import (
    LEDGER,
    TRUST_INSTITUTION_VERIFIED,
    AffiliationClaim,
    ClaimMethod,
    ClaimStatus,
    Cohort,
    Department,
    Institution,
    InstitutionStatus,
    Student,
)

log = logging.getLogger(__name__)

PUBLIC_INSTITUTION_STATUSES = (InstitutionStatus.VERIFIED, InstitutionStatus.ACTIVE)
OPEN_CLAIM_STATUSES = (ClaimStatus.PENDING, ClaimStatus.APPROVED)
ADMIN_ONLY_INSTITUTION_FIELDS = frozenset({"status", "email_domains"})


def _is_platform(actor: Principal) -> bool:
    return actor.role in (Role.system_admin, Role.service)


def _administers(actor: Principal, institution_id: uuid.UUID) -> bool:
    return actor.role == Role.institution_admin and institution_id in actor.org_ids


def _flush_or_conflict(session: Session, detail: str, **extra: Any) -> None:
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(detail, **extra) from None


# Institutions


def institution_visibility(actor: Principal) -> sa.ColumnElement[bool]:
    """SQL condition for the institutions ``actor`` may see."""
    if _is_platform(actor):
        return sa.true()
    public = Institution.status.in_([s.value for s in PUBLIC_INSTITUTION_STATUSES])
    if actor.role == Role.institution_admin and actor.org_ids:
        return sa.or_(public, Institution.id.in_(actor.org_ids))
    return public


def get_institution(
    session: Session, *, actor: Principal, institution_id: uuid.UUID
) -> Institution:
    institution = session.scalar(
        sa.select(Institution).where(
            Institution.id == institution_id, institution_visibility(actor)
        )
    )
    if institution is None:
        raise NotFound(f"Institution {institution_id} does not exist.")
    return institution


def get_managed_institution(
    session: Session, *, actor: Principal, institution_id: uuid.UUID
) -> Institution:
    """Load an institution the actor administers, else NotFound or Forbidden."""
    institution = get_institution(session, actor=actor, institution_id=institution_id)
    if not (actor.role == Role.system_admin or _administers(actor, institution_id)):
        raise Forbidden(
            "Only system admins and this institution's admins can change it."
        )
    return institution


def create_institution(
    session: Session, *, actor: Principal, data: Mapping[str, Any]
) -> Institution:
    if actor.role != Role.system_admin:
        raise Forbidden("Only system admins can create institutions.")
    institution = Institution(
        name=data["name"].strip(),
        email_domains=sorted(set(data.get("email_domains", []))),
        status=data.get("status", InstitutionStatus.ACTIVE.value),
    )
    session.add(institution)
    _flush_or_conflict(
        session,
        f"An institution named {institution.name!r} already exists.",
        field="name",
    )
    LEDGER.record_event(
        session,
        entity_type="institution",
        entity_id=institution.id,
        event_type="institution.created",
        new=_institution_state(institution),
    )
    log.info("institution created", extra={"institution_id": str(institution.id)})
    return institution


def _institution_state(institution: Institution) -> dict[str, Any]:
    return {
        "name": institution.name,
        "email_domains": list(institution.email_domains),
        "status": institution.status,
    }


def _student_state(student: Student) -> dict[str, Any]:
    return {
        field: getattr(student, field)
        for field in (
            "full_name",
            "email",
            "institution_id",
            "registration_number",
            "course",
            "year_of_study",
            "skills",
            "verified",
            "trust_level",
        )
    }


def _claim_state(claim: AffiliationClaim) -> dict[str, Any]:
    return {
        "student_id": claim.student_id,
        "institution_id": claim.institution_id,
        "status": claim.status,
        "method": claim.method,
        "reason": claim.reason,
    }


def update_institution(
    session: Session,
    *,
    actor: Principal,
    institution: Institution,
    changes: Mapping[str, Any],
) -> Institution:
    restricted = ADMIN_ONLY_INSTITUTION_FIELDS & changes.keys()
    if restricted and actor.role != Role.system_admin:
        names = ", ".join(sorted(restricted))
        raise Forbidden(f"Only system admins can change {names}.")
    old = _institution_state(institution)
    if "name" in changes:
        institution.name = changes["name"].strip()
    if "email_domains" in changes:
        institution.email_domains = sorted(set(changes["email_domains"]))
    if "status" in changes:
        institution.status = changes["status"]
    _flush_or_conflict(
        session,
        f"An institution named {institution.name!r} already exists.",
        field="name",
    )
    new = _institution_state(institution)
    if new != old:
        LEDGER.record_event(
            session,
            entity_type="institution",
            entity_id=institution.id,
            event_type="institution.updated",
            old=old,
            new=new,
        )
    return institution


def list_institutions(
    session: Session,
    *,
    actor: Principal,
    codec: CursorCodec,
    limit: int,
    cursor: str | None,
    status: str | None = None,
    q: str | None = None,
) -> Page[Institution]:
    statement = sa.select(Institution).where(institution_visibility(actor))
    if status:
        statement = statement.where(Institution.status == status)
    if q:
        pattern = (
            "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        statement = statement.where(Institution.name.ilike(pattern, escape="\\"))
    return keyset_page(
        session,
        statement,
        order_by=(Institution.created_at, Institution.id),
        codec=codec,
        scope=scope_of("institutions", actor=actor.subject, status=status, q=q),
        limit=limit,
        cursor=cursor,
    )


# Departments and cohorts


def create_department(
    session: Session, *, actor: Principal, institution_id: uuid.UUID, name: str
) -> Department:
    get_managed_institution(session, actor=actor, institution_id=institution_id)
    department = Department(institution_id=institution_id, name=name.strip())
    session.add(department)
    _flush_or_conflict(
        session, f"A department named {department.name!r} already exists.", field="name"
    )
    return department


def list_departments(
    session: Session,
    *,
    actor: Principal,
    institution_id: uuid.UUID,
    codec: CursorCodec,
    limit: int,
    cursor: str | None,
) -> Page[Department]:
    get_institution(session, actor=actor, institution_id=institution_id)
    return keyset_page(
        session,
        sa.select(Department).where(Department.institution_id == institution_id),
        order_by=(Department.created_at, Department.id),
        codec=codec,
        scope=scope_of("departments", institution=institution_id),
        limit=limit,
        cursor=cursor,
    )


def delete_department(
    session: Session,
    *,
    actor: Principal,
    institution_id: uuid.UUID,
    department_id: uuid.UUID,
) -> None:
    get_managed_institution(session, actor=actor, institution_id=institution_id)
    deleted = session.execute(
        sa.delete(Department).where(
            Department.id == department_id, Department.institution_id == institution_id
        )
    )
    if deleted.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"Department {department_id} does not exist.")


def create_cohort(
    session: Session,
    *,
    actor: Principal,
    institution_id: uuid.UUID,
    data: Mapping[str, Any],
) -> Cohort:
    get_managed_institution(session, actor=actor, institution_id=institution_id)
    department = session.scalar(
        sa.select(Department).where(
            Department.id == data["department_id"],
            Department.institution_id == institution_id,
        )
    )
    if department is None:
        raise UnprocessableContent(
            f"Department {data['department_id']} does not belong to this institution.",
            errors=[
                {
                    "location": "json",
                    "field": "department_id",
                    "detail": "Unknown department of this institution.",
                }
            ],
        )
    cohort = Cohort(
        institution_id=institution_id,
        department_id=department.id,
        name=data["name"].strip(),
        start_year=data["start_year"],
        end_year=data["end_year"],
    )
    session.add(cohort)
    _flush_or_conflict(
        session, f"Cohort {cohort.name!r} starting {cohort.start_year} already exists."
    )
    return cohort


def list_cohorts(
    session: Session,
    *,
    actor: Principal,
    institution_id: uuid.UUID,
    codec: CursorCodec,
    limit: int,
    cursor: str | None,
) -> Page[Cohort]:
    get_institution(session, actor=actor, institution_id=institution_id)
    return keyset_page(
        session,
        sa.select(Cohort).where(Cohort.institution_id == institution_id),
        order_by=(Cohort.created_at, Cohort.id),
        codec=codec,
        scope=scope_of("cohorts", institution=institution_id),
        limit=limit,
        cursor=cursor,
    )


def delete_cohort(
    session: Session,
    *,
    actor: Principal,
    institution_id: uuid.UUID,
    cohort_id: uuid.UUID,
) -> None:
    get_managed_institution(session, actor=actor, institution_id=institution_id)
    deleted = session.execute(
        sa.delete(Cohort).where(
            Cohort.id == cohort_id, Cohort.institution_id == institution_id
        )
    )
    if deleted.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"Cohort {cohort_id} does not exist.")


# Students


def student_visibility(actor: Principal) -> sa.ColumnElement[bool]:
    """SQL condition for the students ``actor`` may see.

    Institution admins see students with a pending or approved claim to one of
    their institutions. Students see only themselves.
    """
    if _is_platform(actor):
        return sa.true()
    if actor.role == Role.institution_admin and actor.org_ids:
        return sa.exists().where(
            AffiliationClaim.student_id == Student.id,
            AffiliationClaim.institution_id.in_(actor.org_ids),
            AffiliationClaim.status.in_([s.value for s in OPEN_CLAIM_STATUSES]),
        )
    if actor.role == Role.student and actor.user_id is not None:
        return Student.user_id == actor.user_id
    return sa.false()


def get_student(
    session: Session, *, actor: Principal, student_id: uuid.UUID
) -> Student:
    student = session.scalar(
        sa.select(Student).where(Student.id == student_id, student_visibility(actor))
    )
    if student is None:
        raise NotFound(f"Student {student_id} does not exist.")
    return student


def get_own_profile(session: Session, *, actor: Principal) -> Student:
    student = session.scalar(sa.select(Student).where(Student.user_id == actor.user_id))
    if student is None:
        raise NotFound(
            "You have no student profile yet. Create it with POST /api/v1/students/me."
        )
    return student


def create_profile(
    session: Session, *, actor: Principal, data: Mapping[str, Any]
) -> Student:
    if not actor.email:
        raise UnprocessableContent(
            "Your access token carries no email address. Sign in again.",
        )
    student = Student(
        user_id=actor.user_id,
        full_name=data["full_name"].strip(),
        email=actor.email.lower(),
        registration_number=data.get("registration_number"),
        course=data.get("course"),
        year_of_study=data.get("year_of_study"),
        skills=_normalise_skills(data.get("skills", [])),
    )
    session.add(student)
    _flush_or_conflict(
        session,
        "You already have a student profile. Edit it with PATCH /api/v1/students/me.",
    )
    LEDGER.record_event(
        session,
        entity_type="student",
        entity_id=student.id,
        event_type="student.created",
        new=_student_state(student),
    )
    log.info("student profile created", extra={"student_id": str(student.id)})
    return student


def update_profile(
    session: Session, *, student: Student, changes: Mapping[str, Any]
) -> Student:
    old = _student_state(student)
    for field in ("registration_number", "course", "year_of_study"):
        if field in changes:
            setattr(student, field, changes[field])
    if "full_name" in changes:
        student.full_name = changes["full_name"].strip()
    if "skills" in changes:
        student.skills = _normalise_skills(changes["skills"])
    _flush_or_conflict(
        session,
        "Another student of your institution has this registration number.",
        field="registration_number",
    )
    new = _student_state(student)
    if new != old:
        LEDGER.record_event(
            session,
            entity_type="student",
            entity_id=student.id,
            event_type="student.updated",
            old=old,
            new=new,
        )
    return student


def _normalise_skills(skills: Sequence[str]) -> list[str]:
    """Trim, drop duplicates case-insensitively, keep the first spelling and order."""
    seen: dict[str, str] = {}
    for skill in skills:
        cleaned = " ".join(skill.split())
        if cleaned:
            seen.setdefault(cleaned.lower(), cleaned)
    return list(seen.values())


def list_students(
    session: Session,
    *,
    actor: Principal,
    codec: CursorCodec,
    limit: int,
    cursor: str | None,
    institution_id: uuid.UUID | None = None,
    verified: bool | None = None,
) -> Page[Student]:
    statement = sa.select(Student).where(student_visibility(actor))
    if institution_id is not None:
        statement = statement.where(Student.institution_id == institution_id)
    if verified is not None:
        statement = statement.where(Student.verified.is_(verified))
    return keyset_page(
        session,
        statement,
        order_by=(Student.created_at, Student.id),
        codec=codec,
        scope=scope_of(
            "students",
            actor=actor.subject,
            institution=institution_id,
            verified=verified,
        ),
        limit=limit,
        cursor=cursor,
    )


def batch_students(
    session: Session, *, actor: Principal, ids: Sequence[uuid.UUID]
) -> list[sa.Row[Any]]:
    """Return the visible students among ``ids``, in ``ids`` order, in one statement.

    The results are read-only rows with the columns of ``Student``, not ORM
    objects, because callers only serialise them and ORM objects added about 35
    Python calls per student (measured with 100 ids).
    """
    if not (_is_platform(actor) or actor.role == Role.institution_admin):
        raise Forbidden("Batch lookup by ids is for service callers and admins only.")
    rows = session.execute(
        sa.select(Student.__table__).where(
            Student.id.in_(ids), student_visibility(actor)
        )
    ).all()
    by_id = {row.id: row for row in rows}
    return [by_id[student_id] for student_id in ids if student_id in by_id]


# Affiliation claims


def _email_domain(email: str) -> str:
    return email.rsplit("@", 1)[-1].lower()


def create_claim(
    session: Session, *, actor: Principal, data: Mapping[str, Any]
) -> AffiliationClaim:
    """Claim membership of an institution, approved at once on a verified domain.

    Auto-approval needs the access token to vouch for the email address
    (``email_verified``), because the domain is the only proof offered.
    """
    student = get_own_profile(session, actor=actor)
    institution = session.get(Institution, data["institution_id"])
    if institution is None or institution.status not in PUBLIC_INSTITUTION_STATUSES:
        raise UnprocessableContent(
            f"Institution {data['institution_id']} does not exist or does not accept "
            "affiliation claims.",
            errors=[
                {
                    "location": "json",
                    "field": "institution_id",
                    "detail": "Unknown or inactive institution.",
                }
            ],
        )
    if student.verified and student.institution_id is not None:
        raise Conflict(
            "You are already affiliated with an institution.",
            institution_id=str(student.institution_id),
        )
    # The unique index only stops a second pending claim. An auto-approved one
    # would otherwise leave the first pending, visible to its admins for good.
    if session.scalar(
        sa.select(AffiliationClaim.id).where(
            AffiliationClaim.student_id == student.id,
            AffiliationClaim.status == ClaimStatus.PENDING.value,
        )
    ):
        raise Conflict(
            "You already have a pending affiliation claim. Wait for its decision."
        )
    claim = AffiliationClaim(
        student_id=student.id,
        institution_id=institution.id,
        registration_number=data.get("registration_number")
        or student.registration_number,
    )
    domain_matches = _email_domain(student.email) in institution.email_domains
    if domain_matches and actor.email_verified:
        claim.method = ClaimMethod.EMAIL_DOMAIN.value
        _approve(student, claim, decided_by=None)
    else:
        claim.method = ClaimMethod.ADMIN_REVIEW.value
        claim.status = ClaimStatus.PENDING.value
    session.add(claim)
    _flush_or_conflict(
        session,
        "You already have a pending affiliation claim. Wait for its decision.",
    )
    _record_claim(session, claim, "affiliation_claim.created", old=None)
    if claim.status == ClaimStatus.APPROVED:
        enqueue_claim_decided(session, claim=claim, student=student)
    log.info(
        "affiliation claim created",
        extra={
            "claim_id": str(claim.id),
            "status": claim.status,
            "method": claim.method,
        },
    )
    return claim


def _record_claim(
    session: Session,
    claim: AffiliationClaim,
    event_type: str,
    *,
    old: dict[str, Any] | None,
) -> None:
    LEDGER.record_event(
        session,
        entity_type="affiliation_claim",
        entity_id=claim.id,
        event_type=event_type,
        old=old,
        new=_claim_state(claim),
    )


def _approve(
    student: Student, claim: AffiliationClaim, *, decided_by: uuid.UUID | None
) -> None:
    claim.status = ClaimStatus.APPROVED.value
    claim.decided_by = decided_by
    claim.decided_at = datetime.now(UTC)
    student.institution_id = claim.institution_id
    student.verified = True
    if claim.registration_number:
        student.registration_number = claim.registration_number
    student.trust_level = max(student.trust_level, TRUST_INSTITUTION_VERIFIED)


def list_own_claims(
    session: Session,
    *,
    actor: Principal,
    codec: CursorCodec,
    limit: int,
    cursor: str | None,
) -> Page[AffiliationClaim]:
    student = get_own_profile(session, actor=actor)
    return keyset_page(
        session,
        sa.select(AffiliationClaim).where(AffiliationClaim.student_id == student.id),
        order_by=(AffiliationClaim.created_at, AffiliationClaim.id),
        codec=codec,
        scope=scope_of("own-claims", student=student.id),
        limit=limit,
        cursor=cursor,
    )


def list_institution_claims(
    session: Session,
    *,
    actor: Principal,
    institution_id: uuid.UUID,
    codec: CursorCodec,
    limit: int,
    cursor: str | None,
    status: str | None = None,
) -> Page[AffiliationClaim]:
    _require_claim_reviewer(session, actor=actor, institution_id=institution_id)
    statement = sa.select(AffiliationClaim).where(
        AffiliationClaim.institution_id == institution_id
    )
    if status:
        statement = statement.where(AffiliationClaim.status == status)
    return keyset_page(
        session,
        statement,
        order_by=(AffiliationClaim.created_at, AffiliationClaim.id),
        codec=codec,
        scope=scope_of("institution-claims", institution=institution_id, status=status),
        limit=limit,
        cursor=cursor,
    )


def _require_claim_reviewer(
    session: Session, *, actor: Principal, institution_id: uuid.UUID
) -> None:
    if actor.role == Role.system_admin or _administers(actor, institution_id):
        return
    # A caller who reviews no claims here learns nothing about the institution.
    get_institution(session, actor=actor, institution_id=institution_id)
    raise NotFound(
        f"No affiliation claims of institution {institution_id} are visible to you."
    )


def decide_claim(
    session: Session,
    *,
    actor: Principal,
    institution_id: uuid.UUID,
    claim_id: uuid.UUID,
    decision: str,
    reason: str | None,
) -> AffiliationClaim:
    _require_claim_reviewer(session, actor=actor, institution_id=institution_id)
    claim = session.scalar(
        sa.select(AffiliationClaim)
        .where(
            AffiliationClaim.id == claim_id,
            AffiliationClaim.institution_id == institution_id,
        )
        .with_for_update()
    )
    if claim is None:
        raise NotFound(f"Affiliation claim {claim_id} does not exist.")
    if claim.status != ClaimStatus.PENDING:
        raise Conflict(
            f"This claim is already {claim.status}. Only pending claims are decided.",
            status_now=claim.status,
        )
    student = session.get(Student, claim.student_id, with_for_update=True)
    assert student is not None  # The foreign key guarantees it.
    old = _claim_state(claim)
    if decision == "approve":
        if student.verified and student.institution_id not in (None, institution_id):
            raise Conflict(
                "The student is already affiliated with another institution."
            )
        _approve(student, claim, decided_by=actor.user_id)
    else:
        claim.status = ClaimStatus.REJECTED.value
        claim.reason = reason
        claim.decided_by = actor.user_id
        claim.decided_at = datetime.now(UTC)
    _flush_or_conflict(session, "The claim could not be decided because of a conflict.")
    _record_claim(session, claim, f"affiliation_claim.{claim.status}", old=old)
    enqueue_claim_decided(session, claim=claim, student=student)
    log.info(
        "affiliation claim decided",
        extra={"claim_id": str(claim.id), "status": claim.status},
    )
    return claim


# Ledger


def can_view_ledger(
    session: Session, actor: Principal, entity_type: str, entity_id: str
) -> bool:
    """Tell whether ``actor`` may read the ledger of one entity of this service.

    Students read their own profile's and claims' history; institution admins
    read their institution's and its claims', and those of students they see.
    """
    try:
        key = uuid.UUID(entity_id)
    except ValueError:
        return False
    if entity_type == "student":
        statement = sa.select(Student.id).where(
            Student.id == key, student_visibility(actor)
        )
    elif entity_type == "institution":
        return _administers(actor, key)
    elif entity_type == "affiliation_claim":
        statement = (
            sa.select(AffiliationClaim.id)
            .join(Student, Student.id == AffiliationClaim.student_id)
            .where(AffiliationClaim.id == key)
        )
        if actor.role == Role.institution_admin:
            statement = statement.where(
                AffiliationClaim.institution_id.in_(actor.org_ids)
            )
        elif actor.role == Role.student and actor.user_id is not None:
            statement = statement.where(Student.user_id == actor.user_id)
        else:
            return False
    else:
        return False
    return session.scalar(statement) is not None
