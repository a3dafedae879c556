"""HTTP endpoints of the documents service. Business rules live in ``services``."""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask import Response, json, request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from documents import services
from documents.db import db
from documents.jobs import toolkit
from documents.models import Document, DocumentFormat, DocumentKind, DocumentStatus
from documents.rendering import sha256_hex
from documents.schemas import (
    DocumentPageSchema,
    DocumentQuerySchema,
    DocumentRequestSchema,
    DocumentSchema,
    DocumentVerificationSchema,
    RevocationSchema,
    UploadSchema,
    UploadVerificationSchema,
)
from edulink.auth import Principal, Role, bearer_token, require_principal
from edulink.caching import entity_tag, not_modified, shared_schema, with_etag
from edulink.errors import Conflict
from edulink.pagination import current_codec, page_body

documents_blp = Blueprint(
    "documents",
    __name__,
    url_prefix="/api/v1/documents",
    description="Letters, certificates, summaries and reports of placements",
)
verify_blp = Blueprint(
    "verify",
    __name__,
    url_prefix="/api/v1/verify",
    description="Public verification of issued documents, by code or by file",
)

ANY_USER = tuple(Role)
PUBLIC = {"security": [{}]}


def _json(schema: type[ma.Schema], value: Any, *, status: int = 200) -> Response:
    return Response(
        json.dumps(shared_schema(schema).dump(value)),
        status=status,
        mimetype="application/json",
    )


def _document_response(document: Document, *, status: int = 200) -> Response:
    """Serialise a document with its ETag, or return 304 to a matching GET."""
    tag = entity_tag(document.id, document.version)
    if request.method == "GET":
        cached = not_modified(tag)
        if cached is not None:
            return cached
    response = _json(DocumentSchema, document, status=status)
    if request.method == "POST":
        response.headers["Location"] = url_for(
            "documents.DocumentById", document_id=document.id
        )
    return with_etag(response, tag)


def _request_from(data: dict[str, Any]) -> services.DocumentRequest:
    return services.DocumentRequest(
        kind=DocumentKind(data["kind"]),
        format=DocumentFormat(data["format"]),
        application_id=data.get("application_id"),
        institution_id=data.get("institution_id"),
        period_start=data.get("period_start"),
        period_end=data.get("period_end"),
    )


@documents_blp.route("")
class DocumentCollection(MethodView):
    @documents_blp.arguments(DocumentQuerySchema, location="query")
    @documents_blp.response(200, DocumentPageSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """List the documents you may see, newest first."""
        actor = require_principal(*ANY_USER)
        page = services.list_documents(
            db.session,
            actor=actor,
            codec=current_codec(),
            limit=query["limit"],
            cursor=query["cursor"],
            kind=query.get("kind"),
            application_id=query.get("application_id"),
        )
        return page_body(page.items, page.next_cursor)

    @documents_blp.arguments(DocumentRequestSchema)
    @documents_blp.response(202, DocumentSchema)
    @documents_blp.alt_response(200, description="The document exists already")
    def post(self, data: dict[str, Any]) -> Response:
        """Request a document; the worker renders it.

        Returns 202 with a `Location` to poll until the status is READY or
        FAILED. When a document of the same subject and unchanged data
        exists, returns 200 with it instead.
        """
        actor = require_principal(*ANY_USER)
        document, created = services.request_document(
            db.session,
            actor=actor,
            request=_request_from(data),
            sources=toolkit().sources,
            actor_token=bearer_token(request.headers["Authorization"]),
        )
        db.session.commit()
        return _document_response(document, status=202 if created else 200)


@documents_blp.route("/<uuid:document_id>")
class DocumentById(MethodView):
    @documents_blp.response(200, DocumentSchema)
    @documents_blp.alt_response(304, description="Not modified")
    def get(self, document_id: uuid.UUID) -> Response:
        """Read a document's metadata and status."""
        actor = require_principal(*ANY_USER)
        document = services.get_document(
            db.session, actor=actor, document_id=document_id
        )
        return _document_response(document)


@documents_blp.route("/<uuid:document_id>/content")
class DocumentContent(MethodView):
    @documents_blp.response(
        200,
        content_type="application/pdf",
        description="The PDF, or CSV for a report asked for as csv",
    )
    @documents_blp.alt_response(304, description="Not modified")
    def get(self, document_id: uuid.UUID) -> Response:
        """Download a READY document, with its file name and an ETag of its SHA-256."""
        actor = require_principal(*ANY_USER)
        document = services.get_document(
            db.session, actor=actor, document_id=document_id, content=True
        )
        if document.status != DocumentStatus.READY or document.content is None:
            raise Conflict(
                f"The document is {document.status}, not READY, so it has no content "
                "yet. Poll its metadata until it is READY.",
                status_now=document.status,
                failure_reason=document.failure_reason,
            )
        return _content_response(document)


def _content_response(document: Document) -> Response:
    tag = document.content_sha256 or sha256_hex(document.content or b"")
    cached = not_modified(tag)
    if cached is not None:
        return cached
    mimetype = document.media_type
    if document.format == DocumentFormat.CSV:
        mimetype = "text/csv; charset=utf-8"
    response = Response(document.content, mimetype=mimetype)
    response.headers.set(
        "Content-Disposition", "attachment", filename=document.filename
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return with_etag(response, tag)


@documents_blp.route("/<uuid:document_id>/revocation")
class DocumentRevocation(MethodView):
    @documents_blp.arguments(RevocationSchema)
    @documents_blp.response(200, DocumentSchema)
    def post(self, data: dict[str, Any], document_id: uuid.UUID) -> Response:
        """Revoke an issued document with a reason (system admins)."""
        actor = require_principal(Role.system_admin)
        document = services.revoke(
            db.session, actor=actor, document_id=document_id, reason=data["reason"]
        )
        db.session.commit()
        return _json(DocumentSchema, document)


# Public verification


@verify_blp.route("/<string:code>")
class VerifyCode(MethodView):
    @verify_blp.response(200, DocumentVerificationSchema)
    @verify_blp.doc(**PUBLIC)
    def get(self, code: str) -> Response:
        """Check a tracking code: kind, holder, issue date, valid or revoked, SHA-256.

        No token needed.
        """
        document = services.find_by_code(db.session, code=code[:64])
        response = _json(DocumentVerificationSchema, document)
        response.headers["Cache-Control"] = "no-cache"
        return response


@verify_blp.route("")
class VerifyUpload(MethodView):
    @verify_blp.arguments(UploadSchema, location="files")
    @verify_blp.response(200, UploadVerificationSchema)
    @verify_blp.doc(**PUBLIC)
    def post(self, files: dict[str, Any]) -> Response:
        """Check whether an uploaded file is, byte for byte, an issued document.

        Send it as multipart/form-data in the field `file`. No token needed.
        """
        content = files["file"].read()
        document = services.find_by_content(db.session, content=content)
        body = {
            "valid": document is not None and document.revoked_at is None,
            "match": document is not None,
            "sha256": sha256_hex(content),
            "document": document,
        }
        response = _json(UploadVerificationSchema, body)
        response.headers["Cache-Control"] = "no-store"
        return response


def can_view_ledger(actor: Principal, entity_type: str, entity_id: str) -> bool:
    """Tell whether ``actor`` may read the ledger of one document."""
    try:
        key = uuid.UUID(entity_id)
    except ValueError:
        return False
    if entity_type != "document":
        return False
    statement = services.visible_document_ids(actor).where(Document.id == key)
    return db.session.scalar(statement) is not None
