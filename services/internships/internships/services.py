"""Business rules of employers and opportunities.

Functions take an explicit session and the acting principal, enforce who may
do what, and raise domain errors from ``edulink.errors``. Callers commit. An
object the actor may not see raises NotFound, never Forbidden, so ids of other
organisations' records cannot be probed. Applications and their lifecycle
live in :mod:`internships.applications`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, contains_eager

from edulink.auth import Principal, Role
from edulink.errors import Conflict, Forbidden, NotFound, UnprocessableContent
from edulink.pagination import CursorCodec, Page, keyset_page, scope_of
from internships.models import (
    PLACE_TAKING_STATUSES,
    Application,
    Employer,
    EmployerStatus,
    Opportunity,
    OpportunityStatus,
)

log = logging.getLogger(__name__)

# Employers that may publish opportunities and that everyone may see.
PUBLIC_EMPLOYER_STATUSES = (EmployerStatus.APPROVED, EmployerStatus.ACTIVE)
PUBLIC_OPPORTUNITY_STATUSES = (OpportunityStatus.OPEN, OpportunityStatus.CLOSED)
EMPLOYER_STAFF = (Role.employer_admin, Role.supervisor)

# Status changes an opportunity's owner may make; opening has extra checks.
OPPORTUNITY_MOVES: Mapping[OpportunityStatus, frozenset[OpportunityStatus]] = {
    OpportunityStatus.DRAFT: frozenset(
        {OpportunityStatus.OPEN, OpportunityStatus.CLOSED}
    ),
    OpportunityStatus.OPEN: frozenset({OpportunityStatus.CLOSED}),
    OpportunityStatus.CLOSED: frozenset({OpportunityStatus.OPEN}),
}


def is_platform(actor: Principal | None) -> bool:
    return actor is not None and actor.role in (Role.system_admin, Role.service)


def is_staff_of(actor: Principal | None, employer_id: uuid.UUID) -> bool:
    """Tell whether ``actor`` is an admin or supervisor of the employer."""
    return (
        actor is not None
        and actor.role in EMPLOYER_STAFF
        and employer_id in actor.org_ids
    )


def manages(actor: Principal, employer_id: uuid.UUID) -> bool:
    """Tell whether ``actor`` may change the employer and its opportunities."""
    if actor.role == Role.system_admin:
        return True
    return actor.role == Role.employer_admin and employer_id in actor.org_ids


def field_error(field: str, detail: str, message: str | None = None) -> Any:
    """Build a 422 naming ``field``, in the shape request validation uses."""
    return UnprocessableContent(
        message or detail,
        errors=[{"location": "json", "field": field, "detail": detail}],
    )


def _flush_or_conflict(session: Session, detail: str, **extra: Any) -> None:
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(detail, **extra) from None


# Employers


def employer_visibility(actor: Principal | None) -> sa.ColumnElement[bool]:
    """SQL condition for the employers ``actor`` may see."""
    if is_platform(actor):
        return sa.true()
    public = Employer.status.in_([s.value for s in PUBLIC_EMPLOYER_STATUSES])
    if actor is not None and actor.role in EMPLOYER_STAFF and actor.org_ids:
        return sa.or_(public, Employer.id.in_(actor.org_ids))
    return public


def get_employer(
    session: Session, *, actor: Principal | None, employer_id: uuid.UUID
) -> Employer:
    employer = session.scalar(
        sa.select(Employer).where(
            Employer.id == employer_id, employer_visibility(actor)
        )
    )
    if employer is None:
        raise NotFound(f"Employer {employer_id} does not exist.")
    return employer


def create_employer(
    session: Session, *, actor: Principal, data: Mapping[str, Any]
) -> Employer:
    """Register an employer. Employer admins can only request one for review."""
    status = EmployerStatus.REQUESTED.value
    if actor.role == Role.system_admin:
        status = data.get("status", EmployerStatus.APPROVED.value)
    elif "status" in data and data["status"] != status:
        raise Forbidden("Only system admins set an employer's status.")
    employer = Employer(
        name=data["name"].strip(),
        contact_email=data["contact_email"].lower(),
        contact_phone=data.get("contact_phone"),
        website=data.get("website"),
        status=status,
    )
    session.add(employer)
    _flush_or_conflict(
        session, f"An employer named {employer.name!r} already exists.", field="name"
    )
    log.info("employer created", extra={"employer_id": str(employer.id)})
    return employer


def get_managed_employer(
    session: Session, *, actor: Principal, employer_id: uuid.UUID
) -> Employer:
    employer = get_employer(session, actor=actor, employer_id=employer_id)
    if not manages(actor, employer_id):
        raise Forbidden("Only system admins and this employer's admins can change it.")
    return employer


def update_employer(
    session: Session,
    *,
    actor: Principal,
    employer: Employer,
    changes: Mapping[str, Any],
) -> Employer:
    if "status" in changes and actor.role != Role.system_admin:
        raise Forbidden("Only system admins change an employer's status.")
    if "name" in changes:
        employer.name = changes["name"].strip()
    if "contact_email" in changes:
        employer.contact_email = changes["contact_email"].lower()
    for field in ("contact_phone", "website", "status"):
        if field in changes:
            setattr(employer, field, changes[field])
    _flush_or_conflict(
        session, f"An employer named {employer.name!r} already exists.", field="name"
    )
    return employer


def list_employers(
    session: Session,
    *,
    actor: Principal,
    codec: CursorCodec,
    limit: int,
    cursor: str | None,
    status: str | None = None,
) -> Page[Employer]:
    statement = sa.select(Employer).where(employer_visibility(actor))
    if status:
        statement = statement.where(Employer.status == status)
    return keyset_page(
        session,
        statement,
        order_by=(Employer.created_at, Employer.id),
        codec=codec,
        scope=scope_of("employers", actor=actor.subject, status=status),
        limit=limit,
        cursor=cursor,
    )


# Opportunities


def opportunity_visibility(actor: Principal | None) -> sa.ColumnElement[bool]:
    """SQL condition for the opportunities ``actor`` may see: drafts stay in-house."""
    if is_platform(actor):
        return sa.true()
    public = Opportunity.status.in_([s.value for s in PUBLIC_OPPORTUNITY_STATUSES])
    if actor is not None and actor.role in EMPLOYER_STAFF and actor.org_ids:
        return sa.or_(public, Opportunity.employer_id.in_(actor.org_ids))
    return public


def _with_employer(statement: sa.Select[Any]) -> sa.Select[Any]:
    return statement.join(Opportunity.employer).options(
        contains_eager(Opportunity.employer)
    )


def get_opportunity(
    session: Session,
    *,
    actor: Principal | None,
    opportunity_id: uuid.UUID,
    for_update: bool = False,
) -> Opportunity:
    statement = _with_employer(sa.select(Opportunity)).where(
        Opportunity.id == opportunity_id, opportunity_visibility(actor)
    )
    if for_update:
        # populate_existing refreshes a copy already in the session, so checks
        # made after the lock see the locked row's values.
        statement = statement.with_for_update(of=Opportunity).execution_options(
            populate_existing=True
        )
    opportunity = session.scalar(statement)
    if opportunity is None:
        raise NotFound(f"Opportunity {opportunity_id} does not exist.")
    return opportunity


def normalise_skills(skills: Sequence[str]) -> list[str]:
    """Lower-case, trim and deduplicate skills, keeping their first order.

    Skills are matched as tags, so one spelling per skill keeps the overlap
    filter exact.
    """
    seen: dict[str, None] = {}
    for skill in skills:
        cleaned = " ".join(skill.split()).lower()
        if cleaned:
            seen.setdefault(cleaned, None)
    return list(seen)


def _check_dates(start: date, end: date, deadline: datetime) -> None:
    if end < start:
        raise field_error(
            "end_date",
            "end_date must not be before start_date.",
            f"The end date {end} is before the start date {start}.",
        )
    if deadline.date() > start:
        raise field_error(
            "deadline",
            "deadline must not be after start_date.",
            f"The application deadline {deadline.isoformat()} is after the start "
            f"date {start}. Applications must close before the internship starts.",
        )


def create_opportunity(
    session: Session, *, actor: Principal, data: Mapping[str, Any]
) -> Opportunity:
    employer_id = data["employer_id"]
    employer = session.scalar(
        sa.select(Employer).where(
            Employer.id == employer_id, employer_visibility(actor)
        )
    )
    if employer is None or not manages(actor, employer_id):
        raise field_error(
            "employer_id",
            "Unknown employer, or one you do not administer.",
            f"You cannot publish for employer {employer_id}.",
        )
    _check_dates(data["start_date"], data["end_date"], data["deadline"])
    opportunity = Opportunity(
        employer_id=employer.id,
        title=data["title"].strip(),
        description=data["description"],
        skills=normalise_skills(data.get("skills", [])),
        location=data["location"].strip(),
        location_type=data["location_type"],
        capacity=data["capacity"],
        stipend_amount=(data.get("stipend") or {}).get("amount"),
        stipend_currency=(data.get("stipend") or {}).get("currency"),
        start_date=data["start_date"],
        end_date=data["end_date"],
        deadline=data["deadline"],
        institution_id=data.get("institution_id"),
        status=OpportunityStatus.DRAFT.value,
    )
    opportunity.employer = employer
    session.add(opportunity)
    session.flush()
    log.info("opportunity created", extra={"opportunity_id": str(opportunity.id)})
    return opportunity


def get_managed_opportunity(
    session: Session, *, actor: Principal, opportunity_id: uuid.UUID
) -> Opportunity:
    opportunity = get_opportunity(
        session, actor=actor, opportunity_id=opportunity_id, for_update=True
    )
    if not manages(actor, opportunity.employer_id):
        raise Forbidden(
            "Only system admins and the employer's admins can change this opportunity."
        )
    return opportunity


def update_opportunity(
    session: Session, *, opportunity: Opportunity, changes: Mapping[str, Any]
) -> Opportunity:
    """Apply field changes and a status change, checking the result as a whole."""
    start = changes.get("start_date", opportunity.start_date)
    end = changes.get("end_date", opportunity.end_date)
    deadline = changes.get("deadline", opportunity.deadline)
    if {"start_date", "end_date", "deadline"} & changes.keys():
        _check_dates(start, end, deadline)
    if "capacity" in changes:
        _check_capacity_covers_places(session, opportunity, changes["capacity"])

    for field in ("description", "location_type", "capacity", "institution_id"):
        if field in changes:
            setattr(opportunity, field, changes[field])
    for field in ("title", "location"):
        if field in changes:
            setattr(opportunity, field, changes[field].strip())
    if "skills" in changes:
        opportunity.skills = normalise_skills(changes["skills"])
    if "stipend" in changes:
        stipend = changes["stipend"] or {}
        opportunity.stipend_amount = stipend.get("amount")
        opportunity.stipend_currency = stipend.get("currency")
    opportunity.start_date, opportunity.end_date = start, end
    opportunity.deadline = deadline

    if "status" in changes and changes["status"] != opportunity.status:
        _change_opportunity_status(opportunity, OpportunityStatus(changes["status"]))
    session.flush()
    return opportunity


def _check_capacity_covers_places(
    session: Session, opportunity: Opportunity, capacity: int
) -> None:
    taken = count_taken_places(session, opportunity.id)
    if capacity < taken:
        raise field_error(
            "capacity",
            f"capacity must be at least {taken}, the places already taken.",
            f"{taken} students already hold places, so capacity cannot be {capacity}.",
        )


def count_taken_places(session: Session, opportunity_id: uuid.UUID) -> int:
    return session.scalar(
        sa.select(sa.func.count()).where(
            Application.opportunity_id == opportunity_id,
            Application.status.in_([s.value for s in PLACE_TAKING_STATUSES]),
        )
    )


def _change_opportunity_status(
    opportunity: Opportunity, target: OpportunityStatus
) -> None:
    current = OpportunityStatus(opportunity.status)
    allowed = OPPORTUNITY_MOVES[current]
    if target not in allowed:
        raise Conflict(
            f"An opportunity cannot move from {current} to {target}.",
            status_now=current.value,
            allowed=sorted(s.value for s in allowed),
        )
    if target == OpportunityStatus.OPEN:
        if opportunity.employer.status not in PUBLIC_EMPLOYER_STATUSES:
            raise Conflict(
                f"Employer {opportunity.employer_id} is {opportunity.employer.status}. "
                "Only approved or active employers can open opportunities.",
                employer_status=opportunity.employer.status,
            )
        if opportunity.deadline <= datetime.now(UTC):
            raise field_error(
                "deadline",
                "deadline must be in the future to open the opportunity.",
                "The application deadline has passed. Move it forward to open the "
                "opportunity.",
            )
    opportunity.status = target.value


def search_opportunities(
    session: Session,
    *,
    codec: CursorCodec,
    limit: int,
    cursor: str | None,
    q: str | None = None,
    skills: Sequence[str] = (),
    location_type: str | None = None,
    location: str | None = None,
    deadline_after: datetime | None = None,
    deadline_before: datetime | None = None,
) -> Page[Opportunity]:
    """Page through OPEN opportunities by deadline, nearest first.

    The result is the same for every caller, so it can be cached publicly.
    """
    statement = _with_employer(sa.select(Opportunity)).where(
        Opportunity.status == OpportunityStatus.OPEN.value
    )
    if q:
        query = sa.func.websearch_to_tsquery(
            sa.literal_column("'english'::regconfig"), q
        )
        statement = statement.where(Opportunity.search.op("@@")(query))
    wanted = normalise_skills(skills)
    if wanted:
        statement = statement.where(Opportunity.skills.overlap(wanted))
    if location_type:
        statement = statement.where(Opportunity.location_type == location_type)
    if location:
        statement = statement.where(
            Opportunity.location.ilike(_contains_pattern(location), escape="\\")
        )
    if deadline_after:
        statement = statement.where(Opportunity.deadline > deadline_after)
    if deadline_before:
        statement = statement.where(Opportunity.deadline < deadline_before)
    return keyset_page(
        session,
        statement,
        order_by=(Opportunity.deadline, Opportunity.id),
        codec=codec,
        scope=scope_of(
            "search",
            q=q,
            skills=wanted,
            location_type=location_type,
            location=location,
            after=deadline_after,
            before=deadline_before,
        ),
        limit=limit,
        cursor=cursor,
    )


def _contains_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_employer_opportunities(
    session: Session,
    *,
    actor: Principal | None,
    employer_id: uuid.UUID,
    codec: CursorCodec,
    limit: int,
    cursor: str | None,
    status: str | None = None,
) -> Page[Opportunity]:
    """List an employer's opportunities, drafts included for its own staff."""
    get_employer(session, actor=actor, employer_id=employer_id)
    statement = _with_employer(sa.select(Opportunity)).where(
        Opportunity.employer_id == employer_id, opportunity_visibility(actor)
    )
    if status:
        statement = statement.where(Opportunity.status == status)
    return keyset_page(
        session,
        statement,
        order_by=(Opportunity.created_at, Opportunity.id),
        codec=codec,
        scope=scope_of(
            "employer-opportunities",
            employer=employer_id,
            status=status,
            actor=actor.subject if actor else None,
        ),
        limit=limit,
        cursor=cursor,
        descending=True,
    )
