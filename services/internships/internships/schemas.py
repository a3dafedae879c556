"""Request and response schemas of the internships API."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal

import marshmallow as ma
from marshmallow import validate

from edulink.pagination import PageQuerySchema, page_schema
from internships.models import (
    ApplicationStatus,
    EmployerStatus,
    LocationType,
    OpportunityStatus,
)

MAX_CAPACITY = 10_000
MAX_SKILLS_FILTER = 20
MAX_STIPEND = Decimal(10_000_000_000)


def _no_nul(value: str) -> None:
    # PostgreSQL text cannot store NUL, so reject it here as a 422.
    if "\x00" in value:
        raise ma.ValidationError("Must not contain NUL characters.")


def _text(max_length: int, **kwargs: object) -> ma.fields.String:
    return ma.fields.String(
        validate=[validate.Length(min=1, max=max_length), _no_nul],
        **kwargs,  # type: ignore[arg-type]
    )


def _one_of(values: type) -> validate.OneOf:
    return validate.OneOf([member.value for member in values])


def _deadline(**kwargs: object) -> ma.fields.AwareDateTime:
    return ma.fields.AwareDateTime(
        default_timezone=UTC,
        metadata={"description": "ISO 8601 time; UTC when no offset is given"},
        **kwargs,  # type: ignore[arg-type]
    )


class SkillsField(ma.fields.List):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(
            _text(60),
            validate=validate.Length(max=50),
            **kwargs,  # type: ignore[arg-type]
        )


class CommaListField(ma.fields.Field):
    """Comma-separated values in one query parameter, or the parameter repeated."""

    def _deserialize(self, value, attr, data, **kwargs):  # type: ignore[no-untyped-def]
        raw = data.getlist(attr) if hasattr(data, "getlist") else [value]
        parts = [
            part.strip()
            for item in raw
            for part in str(item).split(",")
            if part.strip()
        ]
        if len(parts) > MAX_SKILLS_FILTER:
            raise ma.ValidationError(f"Give at most {MAX_SKILLS_FILTER} values.")
        for part in parts:
            if len(part) > 60 or "\x00" in part:
                raise ma.ValidationError("Each value must be 1 to 60 characters.")
        return parts


# Employers


def _phone() -> ma.fields.String:
    return ma.fields.String(
        allow_none=True,
        validate=validate.Regexp(
            r"^\+?[0-9 ()-]{5,30}$", error="Not a phone number such as +254 700 000000."
        ),
    )


def _website() -> ma.fields.URL:
    return ma.fields.URL(
        allow_none=True, schemes={"http", "https"}, validate=validate.Length(max=300)
    )


class EmployerSchema(ma.Schema):
    id = ma.fields.UUID(dump_only=True)
    name = _text(200, required=True)
    contact_email = ma.fields.Email(required=True, validate=_no_nul)
    contact_phone = _phone()
    website = _website()
    status = ma.fields.String(validate=_one_of(EmployerStatus))
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class EmployerUpdateSchema(ma.Schema):
    name = _text(200)
    contact_email = ma.fields.Email(validate=_no_nul)
    contact_phone = _phone()
    website = _website()
    status = ma.fields.String(validate=_one_of(EmployerStatus))


class EmployerQuerySchema(PageQuerySchema):
    status = ma.fields.String(validate=_one_of(EmployerStatus))


class EmployerRefSchema(ma.Schema):
    id = ma.fields.UUID()
    name = ma.fields.String()


# Opportunities


def _check_amount(value: Decimal) -> None:
    if not Decimal(0) <= value < MAX_STIPEND:
        raise ma.ValidationError(f"Must be at least 0 and below {MAX_STIPEND}.")


class StipendSchema(ma.Schema):
    amount = ma.fields.Decimal(
        required=True,
        places=2,
        as_string=True,
        validate=_check_amount,
        metadata={
            "type": "string",
            "pattern": r"^[0-9]{1,10}(\.[0-9]{1,2})?$",
            "description": "Amount per month, 0 to 9999999999.99, as a string",
        },
    )
    currency = ma.fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Z]{3}$", error="Use an ISO 4217 code like KES."),
    )


class OpportunitySchema(ma.Schema):
    id = ma.fields.UUID(dump_only=True)
    employer_id = ma.fields.UUID(required=True)
    employer = ma.fields.Nested(EmployerRefSchema, dump_only=True)
    title = _text(200, required=True)
    description = _text(20_000, required=True)
    skills = SkillsField()
    location = _text(200, required=True)
    location_type = ma.fields.String(required=True, validate=_one_of(LocationType))
    capacity = ma.fields.Integer(
        required=True, validate=validate.Range(min=1, max=MAX_CAPACITY)
    )
    stipend = ma.fields.Nested(StipendSchema, allow_none=True)
    start_date = ma.fields.Date(required=True)
    end_date = ma.fields.Date(required=True)
    deadline = _deadline(required=True)
    institution_id = ma.fields.UUID(
        allow_none=True,
        metadata={"description": "Only students of this institution may apply"},
    )
    status = ma.fields.String(dump_only=True)
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class OpportunityUpdateSchema(ma.Schema):
    title = _text(200)
    description = _text(20_000)
    skills = SkillsField()
    location = _text(200)
    location_type = ma.fields.String(validate=_one_of(LocationType))
    capacity = ma.fields.Integer(validate=validate.Range(min=1, max=MAX_CAPACITY))
    stipend = ma.fields.Nested(StipendSchema, allow_none=True)
    start_date = ma.fields.Date()
    end_date = ma.fields.Date()
    deadline = _deadline()
    institution_id = ma.fields.UUID(allow_none=True)
    status = ma.fields.String(validate=_one_of(OpportunityStatus))


class SearchQuerySchema(PageQuerySchema):
    q = _text(
        200,
        metadata={"description": 'Full-text query: words, "phrases", -excluded, or'},
    )
    skills = CommaListField(
        metadata={
            "description": "Comma-separated skills; matches any of them",
            "type": "string",
        }
    )
    location_type = ma.fields.String(validate=_one_of(LocationType))
    location = _text(100, metadata={"description": "Substring of the location"})
    deadline_after = _deadline()
    deadline_before = _deadline()


class EmployerOpportunityQuerySchema(PageQuerySchema):
    status = ma.fields.String(validate=_one_of(OpportunityStatus))


# Applications


class OpportunityRefSchema(ma.Schema):
    id = ma.fields.UUID()
    title = ma.fields.String()
    employer = ma.fields.Nested(EmployerRefSchema)


class InstitutionRefSchema(ma.Schema):
    id = ma.fields.UUID()
    name = ma.fields.String()


class StudentSnapshotSchema(ma.Schema):
    student_id = ma.fields.UUID()
    full_name = ma.fields.String()
    email = ma.fields.String()
    course = ma.fields.String(allow_none=True)
    year_of_study = ma.fields.Integer(allow_none=True)
    skills = ma.fields.List(ma.fields.String())
    institution = ma.fields.Nested(InstitutionRefSchema, allow_none=True)


class ApplicationSchema(ma.Schema):
    id = ma.fields.UUID(dump_only=True)
    opportunity = ma.fields.Nested(OpportunityRefSchema, dump_only=True)
    employer_id = ma.fields.UUID(dump_only=True)
    student_id = ma.fields.UUID(dump_only=True)
    student = ma.fields.Nested(
        StudentSnapshotSchema,
        attribute="student_snapshot",
        dump_only=True,
        metadata={"description": "The student's profile when they applied"},
    )
    institution_id = ma.fields.UUID(dump_only=True, allow_none=True)
    cover_letter = ma.fields.String(
        allow_none=True, validate=[validate.Length(max=10_000), _no_nul]
    )
    status = ma.fields.String(dump_only=True)
    start_date = ma.fields.Date(dump_only=True, allow_none=True)
    end_date = ma.fields.Date(dump_only=True, allow_none=True)
    supervisor_user_id = ma.fields.UUID(dump_only=True, allow_none=True)
    reason = ma.fields.String(dump_only=True, allow_none=True)
    status_changed_at = ma.fields.DateTime(dump_only=True)
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class TransitionSchema(ma.Schema):
    to = ma.fields.String(required=True, validate=_one_of(ApplicationStatus))
    reason = _text(2000)
    start_date = ma.fields.Date()
    end_date = ma.fields.Date()
    supervisor_user_id = ma.fields.UUID()

    @ma.validates_schema
    def _check_dates(self, data: dict, **_kwargs: object) -> None:
        start, end = data.get("start_date"), data.get("end_date")
        if start and end and end < start:
            raise ma.ValidationError(
                "end_date must not be before start_date.", "end_date"
            )


class ApplicationQuerySchema(PageQuerySchema):
    status = ma.fields.String(validate=_one_of(ApplicationStatus))


class EmployerApplicationQuerySchema(ApplicationQuerySchema):
    opportunity_id = ma.fields.UUID()


class PlacementQuerySchema(ApplicationQuerySchema):
    institution_id = ma.fields.UUID(required=True)


EmployerPageSchema = page_schema(EmployerSchema, "EmployerPage")
OpportunityPageSchema = page_schema(OpportunitySchema, "OpportunityPage")
ApplicationPageSchema = page_schema(ApplicationSchema, "ApplicationPage")
