"""Request and response schemas of the documents API."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import marshmallow as ma
from flask import url_for
from marshmallow import validate

from documents.models import PLACEMENT_KINDS, DocumentFormat, DocumentKind
from edulink.pagination import PageQuerySchema, page_schema


def _one_of(values: type) -> validate.OneOf:
    return validate.OneOf([member.value for member in values])


def _field_error(field: str, message: str) -> ma.ValidationError:
    return ma.ValidationError(message, field)


class DocumentRequestSchema(ma.Schema):
    kind = ma.fields.String(required=True, validate=_one_of(DocumentKind))
    format = ma.fields.String(
        load_default=DocumentFormat.PDF.value,
        validate=_one_of(DocumentFormat),
        metadata={"description": "pdf, or csv for a placement_report"},
    )
    application_id = ma.fields.UUID(
        metadata={"description": "The placement, for letters, certificates, summaries"}
    )
    institution_id = ma.fields.UUID(metadata={"description": "For a placement_report"})
    period_start = ma.fields.Date(metadata={"description": "For a placement_report"})
    period_end = ma.fields.Date(
        metadata={"description": "For a placement_report, inclusive"}
    )

    @ma.validates_schema
    def _check_subject(self, data: dict[str, Any], **_kwargs: object) -> None:
        kind = DocumentKind(data["kind"])
        if kind in PLACEMENT_KINDS:
            self._check_placement(data)
        else:
            self._check_report(data)

    @staticmethod
    def _check_placement(data: dict[str, Any]) -> None:
        if "application_id" not in data:
            raise _field_error("application_id", f"Required for a {data['kind']}.")
        extra = {"institution_id", "period_start", "period_end"} & data.keys()
        if extra:
            raise _field_error(sorted(extra)[0], f"Not used for a {data['kind']}.")
        if data["format"] != DocumentFormat.PDF:
            raise _field_error("format", f"A {data['kind']} is a pdf only.")

    @staticmethod
    def _check_report(data: dict[str, Any]) -> None:
        for field in ("institution_id", "period_start", "period_end"):
            if field not in data:
                raise _field_error(field, "Required for a placement_report.")
        if "application_id" in data:
            raise _field_error("application_id", "Not used for a placement_report.")
        if data["period_end"] < data["period_start"]:
            raise _field_error("period_end", "Must not be before period_start.")


def _links(document: Any) -> dict[str, str]:
    links = {"self": url_for("documents.DocumentById", document_id=document.id)}
    if document.status == "READY":
        links["content"] = url_for("documents.DocumentContent", document_id=document.id)
    return links


class DocumentSchema(ma.Schema):
    id = ma.fields.UUID()
    kind = ma.fields.String()
    format = ma.fields.String()
    status = ma.fields.String(
        metadata={"description": "PENDING, PROCESSING, READY or FAILED"}
    )
    failure_reason = ma.fields.String(allow_none=True)
    title = ma.fields.String()
    holder_name = ma.fields.String()
    tracking_code = ma.fields.String()
    application_id = ma.fields.UUID(allow_none=True)
    institution_id = ma.fields.UUID(allow_none=True)
    period_start = ma.fields.Date(allow_none=True)
    period_end = ma.fields.Date(allow_none=True)
    media_type = ma.fields.String()
    filename = ma.fields.String()
    sha256 = ma.fields.String(attribute="content_sha256", allow_none=True)
    size = ma.fields.Integer(attribute="content_size", allow_none=True)
    source_hash = ma.fields.String(
        metadata={"description": "SHA-256 of the source data snapshot"}
    )
    issued_at = ma.fields.DateTime(allow_none=True)
    revoked = ma.fields.Function(lambda document: document.revoked_at is not None)
    revoked_at = ma.fields.DateTime(allow_none=True)
    revocation_reason = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()
    links = ma.fields.Function(_links)


class DocumentQuerySchema(PageQuerySchema):
    kind = ma.fields.String(validate=_one_of(DocumentKind))
    application_id = ma.fields.UUID()


class RevocationSchema(ma.Schema):
    reason = ma.fields.String(
        required=True,
        validate=[
            validate.Length(min=1, max=2000),
            validate.Regexp(r"^[^\x00]*$", error="Must not contain NUL characters."),
        ],
    )


class DocumentVerificationSchema(ma.Schema):
    """The public facts of an issued document, for anyone holding its code or file."""

    tracking_code = ma.fields.String()
    kind = ma.fields.String()
    title = ma.fields.String()
    holder_name = ma.fields.String()
    issued_on = ma.fields.Function(
        lambda document: document.issued_at.astimezone(UTC).date().isoformat()
    )
    status = ma.fields.Function(
        lambda document: "revoked" if document.revoked_at else "valid",
        metadata={"description": "valid or revoked"},
    )
    valid = ma.fields.Function(lambda document: document.revoked_at is None)
    revoked_at = ma.fields.DateTime(allow_none=True)
    sha256 = ma.fields.String(attribute="content_sha256")


class UploadVerificationSchema(ma.Schema):
    valid = ma.fields.Boolean(
        metadata={"description": "The bytes are an issued, unrevoked document"}
    )
    match = ma.fields.Boolean(
        metadata={"description": "The bytes are an issued document"}
    )
    sha256 = ma.fields.String(metadata={"description": "SHA-256 of the uploaded bytes"})
    document = ma.fields.Nested(DocumentVerificationSchema, allow_none=True)


class UploadSchema(ma.Schema):
    file = ma.fields.Raw(
        required=True,
        metadata={"type": "string", "format": "binary", "description": "The file"},
    )


DocumentPageSchema = page_schema(DocumentSchema, "DocumentPage")
