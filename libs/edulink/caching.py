"""Entity tags and conditional requests.

A resource's ETag derives from its id and its optimistic-lock version, so it
changes exactly when a write commits. A GET gets 304 for a matching
``If-None-Match``. Writes require ``If-Match`` (428 without it, 412 when
stale), so two clients editing one resource never overwrite each other.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from typing import Any

import marshmallow as ma
from flask import Response, json, request

from edulink.errors import PreconditionFailed, PreconditionRequired


def entity_tag(resource_id: uuid.UUID | str, version: int) -> str:
    """Return the strong entity tag (without quotes) of a resource version."""
    digest = hashlib.sha256(f"{resource_id}:{version}".encode()).hexdigest()
    return digest[:20]


def not_modified(tag: str) -> Response | None:
    """Return a 304 response when ``If-None-Match`` matches ``tag``, else None.

    If-None-Match uses weak comparison (RFC 9110, section 13.1.2), so ``W/"tag"``
    matches too. A gzipping proxy such as nginx turns strong ETags into weak ones.
    """
    if request.if_none_match.contains_weak(tag):
        response = Response(status=304)
        response.set_etag(tag)
        response.headers["Cache-Control"] = "private, no-cache"
        return response
    return None


def require_if_match(tag: str) -> None:
    """Raise unless the request's ``If-Match`` names the current ``tag``."""
    if not request.headers.get("If-Match"):
        raise PreconditionRequired(
            "This request must carry an If-Match header with the resource's "
            "current ETag. GET the resource first and send its ETag.",
        )
    # Weak comparison on purpose: nginx marks the ETag weak when it gzips a
    # response, and the tag still names exactly one stored version.
    if not (request.if_match.star_tag or request.if_match.contains_weak(tag)):
        raise PreconditionFailed(
            "The resource has changed since the ETag in If-Match was issued. "
            "GET it again, reapply the change and retry with the new ETag.",
        )


def with_etag(response: Response, tag: str) -> Response:
    """Set the ETag and a Cache-Control that makes clients revalidate."""
    response.set_etag(tag)
    response.headers["Cache-Control"] = "private, no-cache"
    return response


# OpenAPI description of the header every conditional write requires.
IF_MATCH_PARAMETER = {
    "in": "header",
    "name": "If-Match",
    "required": True,
    "description": "The resource's current ETag",
    "schema": {"type": "string"},
}


@functools.cache
def shared_schema(schema: type[ma.Schema]) -> ma.Schema:
    """Return one instance per schema class, because building one copies its fields."""
    return schema()


def entity_response(
    schema: type[ma.Schema],
    entity: Any,
    *,
    status: int = 200,
    location: str | None = None,
) -> Response:
    """Serialise ``entity`` (with ``id`` and ``version``) and set its ETag.

    A GET whose ``If-None-Match`` matches gets a 304 instead.
    """
    tag = entity_tag(entity.id, entity.version)
    if status == 200 and request.method == "GET":
        cached = not_modified(tag)
        if cached is not None:
            return cached
    response = Response(
        json.dumps(shared_schema(schema).dump(entity)),
        status=status,
        mimetype="application/json",
    )
    if location:
        response.headers["Location"] = location
    return with_etag(response, tag)
