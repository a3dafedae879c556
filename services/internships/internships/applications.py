"""Applications and placements: applying, the status lifecycle, lists.

The lifecycle is the :data:`TRANSITIONS` table. Each move is checked against
it for the acting party, then against the rule of its target state (capacity
for ACCEPTED, dates for ACTIVE), and enqueues its side effects as jobs in the
same transaction (:func:`internships.jobs.enqueue_status_change`).
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, contains_eager

from edulink.auth import Principal, Role
from edulink.errors import Conflict, Forbidden, NotFound, UnprocessableContent
from edulink.pagination import CursorCodec, Page, keyset_page, scope_of
from internships import jobs
from internships.db import db
from internships.models import (
    CURRENT_PLACEMENT_STATUSES,
    PLACEMENT_STATUSES,
    Application,
    ApplicationStatus,
    IdempotencyRecord,
    Opportunity,
    OpportunityStatus,
)
from internships.services import (
    count_taken_places,
    field_error,
    get_employer,
    get_opportunity,
    is_platform,
)
from internships.student_directory import StudentDirectory

log = logging.getLogger(__name__)

S = ApplicationStatus


class Party(enum.StrEnum):
    """The relation of an actor to one application."""

    STUDENT = "student"  # the applicant
    EMPLOYER_ADMIN = "employer_admin"  # an admin of the opportunity's employer
    SUPERVISOR = "supervisor"  # assigned to the placement, or of the employer
    INSTITUTION_ADMIN = "institution_admin"  # an admin of the student's institution
    SYSTEM_ADMIN = "system_admin"  # may make every move


@dataclass(frozen=True)
class Move:
    """One allowed transition: who may make it and whether it needs a reason."""

    by: frozenset[Party]
    needs_reason: bool = False


EMPLOYER = frozenset({Party.EMPLOYER_ADMIN})
STUDENT = frozenset({Party.STUDENT})
WITHDRAW = Move(STUDENT, needs_reason=True)

# From state -> to state -> who. System admins may make every move listed here.
TRANSITIONS: Mapping[ApplicationStatus, Mapping[ApplicationStatus, Move]] = {
    S.APPLIED: {
        S.SHORTLISTED: Move(EMPLOYER),
        S.REJECTED: Move(EMPLOYER),
        S.WITHDRAWN: WITHDRAW,
    },
    S.SHORTLISTED: {
        S.ACCEPTED: Move(EMPLOYER),
        S.REJECTED: Move(EMPLOYER),
        S.WITHDRAWN: WITHDRAW,
    },
    S.ACCEPTED: {
        S.ACTIVE: Move(EMPLOYER),
        S.WITHDRAWN: WITHDRAW,
    },
    S.ACTIVE: {
        S.COMPLETED: Move(frozenset({Party.EMPLOYER_ADMIN, Party.SUPERVISOR})),
        S.TERMINATED: Move(EMPLOYER, needs_reason=True),
    },
    S.COMPLETED: {
        S.CERTIFIED: Move(frozenset({Party.INSTITUTION_ADMIN})),
    },
}

# Placement dates and the supervisor are set on the way to these states.
PLACEMENT_SETUP_TARGETS = frozenset({S.ACCEPTED, S.ACTIVE})
IDEMPOTENCY_KEY_MAX_LENGTH = 200


# Visibility and parties


def application_visibility(actor: Principal) -> sa.ColumnElement[bool]:
    """SQL condition for the applications ``actor`` may see."""
    if is_platform(actor):
        return sa.true()
    if actor.role == Role.student:
        return Application.student_user_id == actor.user_id
    if actor.role == Role.employer_admin:
        return Application.employer_id.in_(actor.org_ids)
    if actor.role == Role.supervisor:
        return sa.or_(
            Application.employer_id.in_(actor.org_ids),
            Application.supervisor_user_id == actor.user_id,
        )
    if actor.role == Role.institution_admin:
        return Application.institution_id.in_(actor.org_ids)
    return sa.false()


def parties_of(actor: Principal, application: Application) -> frozenset[Party]:
    """Return every party ``actor`` plays for ``application``."""
    parties: set[Party] = set()
    if actor.role == Role.system_admin:
        parties.add(Party.SYSTEM_ADMIN)
    elif actor.role == Role.student and actor.user_id == application.student_user_id:
        parties.add(Party.STUDENT)
    elif actor.role == Role.employer_admin and application.employer_id in actor.org_ids:
        parties.add(Party.EMPLOYER_ADMIN)
    elif actor.role == Role.supervisor and (
        application.employer_id in actor.org_ids
        or application.supervisor_user_id == actor.user_id
    ):
        parties.add(Party.SUPERVISOR)
    elif (
        actor.role == Role.institution_admin
        and application.institution_id in actor.org_ids
    ):
        parties.add(Party.INSTITUTION_ADMIN)
    return frozenset(parties)


def may_make(move: Move, parties: frozenset[Party]) -> bool:
    return Party.SYSTEM_ADMIN in parties or bool(move.by & parties)


def allowed_next(
    status: ApplicationStatus, parties: frozenset[Party]
) -> list[ApplicationStatus]:
    """Return the states ``parties`` may move an application in ``status`` to."""
    moves = TRANSITIONS.get(status, {})
    return [target for target, move in moves.items() if may_make(move, parties)]


def _with_opportunity(statement: sa.Select[Any]) -> sa.Select[Any]:
    return (
        statement.join(Application.opportunity)
        .join(Opportunity.employer)
        .options(
            contains_eager(Application.opportunity).contains_eager(Opportunity.employer)
        )
    )


def get_application(
    session: Session,
    *,
    actor: Principal,
    application_id: uuid.UUID,
    for_update: bool = False,
) -> Application:
    statement = _with_opportunity(sa.select(Application)).where(
        Application.id == application_id, application_visibility(actor)
    )
    if for_update:
        # Only the application row: the opportunity is locked separately, and
        # only by the moves that need it.
        statement = statement.with_for_update(of=Application)
    application = session.scalar(statement)
    if application is None:
        raise NotFound(f"Application {application_id} does not exist.")
    return application


# Applying


def request_fingerprint(opportunity_id: uuid.UUID, body: Mapping[str, Any]) -> str:
    """Hash the opportunity id and body of a POST, to tell retries from new requests."""
    canonical = json.dumps(
        {"opportunity_id": str(opportunity_id), "body": body},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: dict[str, Any]
    location: str | None


def find_stored_response(
    session: Session, *, actor: Principal, key: str, fingerprint: str
) -> StoredResponse | None:
    """Return the first response to this key, holding a lock until commit.

    The advisory lock makes a concurrent retry with the same key wait for the
    first request's transaction, and then find its response.
    """
    if not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX_LENGTH:
        raise UnprocessableContent(
            f"The Idempotency-Key header must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} "
            "characters.",
            errors=[
                {
                    "location": "headers",
                    "field": "Idempotency-Key",
                    "detail": "Invalid length.",
                }
            ],
        )
    lock_key = f"idempotency:{actor.subject}:{key}"
    session.execute(
        sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(lock_key, 0)))
    )
    record = session.get(IdempotencyRecord, (actor.subject, key))
    if record is None:
        return None
    if record.request_hash != fingerprint:
        raise UnprocessableContent(
            "This Idempotency-Key was used for a different request. Use a new key "
            "for a new request.",
            errors=[
                {
                    "location": "headers",
                    "field": "Idempotency-Key",
                    "detail": "Reused with a different request body or URL.",
                }
            ],
        )
    return StoredResponse(record.status_code, record.body, record.location)


def store_response(
    session: Session,
    *,
    actor: Principal,
    key: str,
    fingerprint: str,
    response: StoredResponse,
) -> None:
    session.add(
        IdempotencyRecord(
            subject=actor.subject,
            key=key,
            request_hash=fingerprint,
            status_code=response.status_code,
            body=response.body,
            location=response.location,
        )
    )
    session.flush()


def apply(
    session: Session,
    *,
    actor: Principal,
    opportunity_id: uuid.UUID,
    data: Mapping[str, Any],
    directory: StudentDirectory,
    student_token: str,
) -> Application:
    """Create the actor's application to an opportunity.

    Cheap checks run first. The student's profile is then read from the
    students service, and the opportunity is locked only after that call, so
    no row lock is held while waiting on the network.
    """
    opportunity = get_opportunity(session, actor=actor, opportunity_id=opportunity_id)
    _check_open(opportunity)
    _check_no_live_application(session, actor=actor, opportunity_id=opportunity_id)
    _check_no_current_placement(session, actor=actor)
    _check_free_place(session, opportunity)

    snapshot = directory.snapshot(student_token=student_token)
    institution_id = _snapshot_institution_id(snapshot)
    if opportunity.institution_id and opportunity.institution_id != institution_id:
        raise Forbidden(
            f"Opportunity {opportunity.id} is open only to students of institution "
            f"{opportunity.institution_id}.",
            institution_id=str(opportunity.institution_id),
        )

    # Lock the row and check again: it may have closed during the call.
    opportunity = get_opportunity(
        session, actor=actor, opportunity_id=opportunity_id, for_update=True
    )
    _check_open(opportunity)
    application = Application(
        opportunity_id=opportunity.id,
        employer_id=opportunity.employer_id,
        student_id=uuid.UUID(snapshot["student_id"]),
        student_user_id=actor.user_id,
        institution_id=institution_id,
        student_snapshot=snapshot,
        cover_letter=data.get("cover_letter"),
        status=S.APPLIED.value,
    )
    application.opportunity = opportunity
    session.add(application)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(
            "You already have a live application to this opportunity, or a "
            "placement elsewhere."
        ) from None
    jobs.enqueue_status_change(
        session, application=application, previous=None, actor=actor
    )
    log.info(
        "application created",
        extra={
            "application_id": str(application.id),
            "opportunity_id": str(opportunity.id),
        },
    )
    return application


def _snapshot_institution_id(snapshot: Mapping[str, Any]) -> uuid.UUID | None:
    institution = snapshot.get("institution") or {}
    return uuid.UUID(institution["id"]) if institution.get("id") else None


def _check_open(opportunity: Opportunity) -> None:
    if opportunity.status != OpportunityStatus.OPEN:
        raise Conflict(
            f"Opportunity {opportunity.id} is {opportunity.status} and accepts no "
            "applications.",
            opportunity_status=opportunity.status,
        )
    if opportunity.deadline <= datetime.now(UTC):
        raise Conflict(
            f"The application deadline {opportunity.deadline.isoformat()} has passed.",
            deadline=opportunity.deadline.isoformat(),
        )


def _check_no_live_application(
    session: Session, *, actor: Principal, opportunity_id: uuid.UUID
) -> None:
    existing = session.scalar(
        sa.select(Application.id).where(
            Application.opportunity_id == opportunity_id,
            Application.student_user_id == actor.user_id,
            Application.status != S.WITHDRAWN.value,
        )
    )
    if existing is not None:
        raise Conflict(
            "You have already applied to this opportunity.",
            application_id=str(existing),
        )


def _check_no_current_placement(session: Session, *, actor: Principal) -> None:
    placement = session.scalar(
        sa.select(Application.id).where(
            Application.student_user_id == actor.user_id,
            Application.status.in_([s.value for s in CURRENT_PLACEMENT_STATUSES]),
        )
    )
    if placement is not None:
        raise Conflict(
            "You already hold an accepted or active placement, so you cannot apply "
            "for another.",
            application_id=str(placement),
        )


def _check_free_place(session: Session, opportunity: Opportunity) -> None:
    taken = count_taken_places(session, opportunity.id)
    if taken >= opportunity.capacity:
        raise Conflict(
            f"All {opportunity.capacity} places of opportunity {opportunity.id} are "
            "taken.",
            capacity=opportunity.capacity,
        )


# Transitions


def transition(
    session: Session,
    *,
    actor: Principal,
    application: Application,
    data: Mapping[str, Any],
) -> Application:
    """Move ``application`` to ``data["to"]`` if the table and the rules allow it.

    The caller loaded ``application`` FOR UPDATE and checked its If-Match.
    """
    current = ApplicationStatus(application.status)
    target = ApplicationStatus(data["to"])
    parties = parties_of(actor, application)
    move = _check_move(current, target, parties)

    reason = data.get("reason")
    if move.needs_reason and not reason:
        raise field_error(
            "reason",
            f"A reason is required to move to {target}.",
            f"Give a reason for moving the application to {target}.",
        )
    _check_setup_fields(target, data)

    if target == S.ACCEPTED:
        _lock_and_check_capacity(session, application)
    if target in PLACEMENT_SETUP_TARGETS:
        _apply_setup(application, data, require_dates=target == S.ACTIVE)

    application.status = target.value
    application.reason = reason
    application.status_changed_at = datetime.now(UTC)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(
            "The student already holds an accepted or active placement elsewhere."
        ) from None
    jobs.enqueue_status_change(
        session, application=application, previous=current, actor=actor
    )
    log.info(
        "application moved",
        extra={
            "application_id": str(application.id),
            "from": current.value,
            "to": target.value,
        },
    )
    return application


def _check_move(
    current: ApplicationStatus,
    target: ApplicationStatus,
    parties: frozenset[Party],
) -> Move:
    allowed = [state.value for state in allowed_next(current, parties)]
    move = TRANSITIONS.get(current, {}).get(target)
    if move is None:
        raise Conflict(
            f"An application cannot move from {current} to {target}.",
            status_now=current.value,
            allowed=allowed,
        )
    if not may_make(move, parties):
        raise Forbidden(
            f"You may not move this application from {current} to {target}.",
            status_now=current.value,
            allowed=allowed,
        )
    return move


def _check_setup_fields(target: ApplicationStatus, data: Mapping[str, Any]) -> None:
    if target in PLACEMENT_SETUP_TARGETS:
        return
    for field in ("start_date", "end_date", "supervisor_user_id"):
        if data.get(field) is not None:
            raise field_error(
                field,
                f"{field} can be set only when moving to ACCEPTED or ACTIVE.",
            )


def _lock_and_check_capacity(session: Session, application: Application) -> None:
    # The row lock serialises acceptances to one opportunity, so two admins
    # accepting the last place at once cannot both succeed. Selecting the
    # column, not the entity, reads the locked row's current capacity.
    capacity = session.scalar(
        sa.select(Opportunity.capacity)
        .where(Opportunity.id == application.opportunity_id)
        .with_for_update()
    )
    assert capacity is not None  # The foreign key guarantees it.
    taken = count_taken_places(session, application.opportunity_id)
    if taken >= capacity:
        raise Conflict(
            f"All {capacity} places of this opportunity are taken.",
            capacity=capacity,
            taken=taken,
        )


def _apply_setup(
    application: Application, data: Mapping[str, Any], *, require_dates: bool
) -> None:
    opportunity = application.opportunity
    start: date | None = data.get("start_date") or application.start_date
    end: date | None = data.get("end_date") or application.end_date
    if require_dates:
        start = start or opportunity.start_date
        end = end or opportunity.end_date
    if start and end and end < start:
        raise field_error(
            "end_date",
            "end_date must not be before start_date.",
            f"The placement's end date {end} is before its start date {start}.",
        )
    application.start_date, application.end_date = start, end
    if data.get("supervisor_user_id") is not None:
        application.supervisor_user_id = data["supervisor_user_id"]


# Lists


def list_employer_applications(
    session: Session,
    *,
    actor: Principal,
    employer_id: uuid.UUID,
    codec: CursorCodec,
    limit: int,
    cursor: str | None,
    status: str | None = None,
    opportunity_id: uuid.UUID | None = None,
) -> Page[Application]:
    """List applications to an employer's opportunities, newest first."""
    staff = actor.role in (Role.employer_admin, Role.supervisor)
    if not (
        actor.role == Role.system_admin or (staff and employer_id in actor.org_ids)
    ):
        raise NotFound(f"No applications of employer {employer_id} are visible to you.")
    get_employer(session, actor=actor, employer_id=employer_id)
    statement = _with_opportunity(sa.select(Application)).where(
        Application.employer_id == employer_id
    )
    if status:
        statement = statement.where(Application.status == status)
    if opportunity_id:
        statement = statement.where(Application.opportunity_id == opportunity_id)
    return _newest_first(
        session,
        statement,
        scope=scope_of(
            "employer-applications",
            employer=employer_id,
            status=status,
            opportunity=opportunity_id,
        ),
        codec=codec,
        limit=limit,
        cursor=cursor,
    )


def list_own_applications(
    session: Session,
    *,
    actor: Principal,
    codec: CursorCodec,
    limit: int,
    cursor: str | None,
    status: str | None = None,
) -> Page[Application]:
    """List the student's own applications with their opportunity and employer."""
    statement = _with_opportunity(sa.select(Application)).where(
        Application.student_user_id == actor.user_id
    )
    if status:
        statement = statement.where(Application.status == status)
    return _newest_first(
        session,
        statement,
        scope=scope_of("own-applications", student=actor.subject, status=status),
        codec=codec,
        limit=limit,
        cursor=cursor,
    )


def list_institution_placements(
    session: Session,
    *,
    actor: Principal,
    institution_id: uuid.UUID,
    codec: CursorCodec,
    limit: int,
    cursor: str | None,
    status: str | None = None,
) -> Page[Application]:
    """List the placements of an institution's students, newest first."""
    admin = actor.role == Role.institution_admin and institution_id in actor.org_ids
    if not (actor.role == Role.system_admin or admin):
        raise NotFound(
            f"No placements of institution {institution_id} are visible to you."
        )
    statement = _with_opportunity(sa.select(Application)).where(
        Application.institution_id == institution_id,
        Application.status.in_([s.value for s in PLACEMENT_STATUSES]),
    )
    if status:
        statement = statement.where(Application.status == status)
    return _newest_first(
        session,
        statement,
        scope=scope_of("placements", institution=institution_id, status=status),
        codec=codec,
        limit=limit,
        cursor=cursor,
    )


def _newest_first(
    session: Session,
    statement: sa.Select[Any],
    *,
    scope: str,
    codec: CursorCodec,
    limit: int,
    cursor: str | None,
) -> Page[Application]:
    return keyset_page(
        session,
        statement,
        order_by=(Application.created_at, Application.id),
        codec=codec,
        scope=scope,
        limit=limit,
        cursor=cursor,
        descending=True,
    )


def can_view_ledger(actor: Principal, entity_type: str, entity_id: str) -> bool:
    """Tell whether ``actor`` may read the ledger of one application or opportunity."""
    try:
        key = uuid.UUID(entity_id)
    except ValueError:
        return False
    if entity_type == "application":
        statement = sa.select(Application.id).where(
            Application.id == key, application_visibility(actor)
        )
    elif entity_type == "opportunity":
        statement = sa.select(Opportunity.id).where(
            Opportunity.id == key, Opportunity.employer_id.in_(actor.org_ids)
        )
    else:
        return False
    return db.session.scalar(statement) is not None
