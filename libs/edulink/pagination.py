"""Keyset (cursor) pagination with opaque, signed cursors.

A cursor holds the sort-key values of the last row of a page and a scope string
naming the list and its filters, signed with HMAC-SHA256. The server checks the
signature and the scope, so a tampered cursor, or one taken from another list,
is a 400 instead of a silently wrong page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

import marshmallow as ma
import sqlalchemy as sa
from flask import request
from sqlalchemy.orm import Session

from edulink.errors import BadRequest

DEFAULT_LIMIT = 20
MAX_LIMIT = 100

RowT = TypeVar("RowT")


class PageQuerySchema(ma.Schema):
    """Query parameters every list endpoint accepts."""

    limit = ma.fields.Integer(
        load_default=DEFAULT_LIMIT,
        validate=ma.validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": f"Page size, 1 to {MAX_LIMIT}"},
    )
    cursor = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(max=1024),
        metadata={"description": "The `next` value of the previous page"},
    )


class PageSchema(ma.Schema):
    """Envelope of a page; subclasses set ``items``."""

    next = ma.fields.String(
        allow_none=True,
        metadata={"description": "Cursor of the next page, null on the last page"},
    )


def page_schema(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    """Build a page schema named ``name`` whose items use ``item_schema``."""
    return type(
        name, (PageSchema,), {"items": ma.fields.List(ma.fields.Nested(item_schema))}
    )


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _from_json(value: Any, python_type: type) -> Any:
    if value is None:
        return None
    if python_type is datetime:
        return datetime.fromisoformat(value)
    if python_type is date:
        return date.fromisoformat(value)
    if python_type is uuid.UUID:
        return uuid.UUID(value)
    if python_type in (int, str, float) and isinstance(value, python_type):
        return value
    raise ValueError(f"unexpected cursor value {value!r}")


class CursorCodec:
    """Encode and verify cursors with an HMAC key."""

    def __init__(self, secret: bytes | str) -> None:
        self._key = secret.encode() if isinstance(secret, str) else secret

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:16]

    def encode(self, scope: str, values: Sequence[Any]) -> str:
        payload = json.dumps(
            {"s": _scope_digest(scope), "v": [_to_json(value) for value in values]},
            separators=(",", ":"),
        ).encode()
        return f"{_b64encode(payload)}.{_b64encode(self._sign(payload))}"

    def decode(self, cursor: str, scope: str, types: Sequence[type]) -> tuple[Any, ...]:
        """Return the sort-key values of ``cursor``, or raise BadRequest."""
        try:
            encoded_payload, encoded_signature = cursor.split(".", 1)
            payload = _b64decode(encoded_payload)
            signature = _b64decode(encoded_signature)
        except (ValueError, binascii.Error):
            raise _invalid_cursor() from None
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise _invalid_cursor()
        try:
            data = json.loads(payload)
            values = data["v"]
            if data["s"] != _scope_digest(scope) or len(values) != len(types):
                raise _invalid_cursor(
                    "The cursor belongs to another list or other filters. "
                    "Start again without a cursor."
                )
            return tuple(_from_json(v, t) for v, t in zip(values, types, strict=True))
        except (KeyError, TypeError, ValueError):
            raise _invalid_cursor() from None


def _scope_digest(scope: str) -> str:
    return hashlib.sha256(scope.encode()).hexdigest()[:16]


def _invalid_cursor(detail: str | None = None) -> BadRequest:
    return BadRequest(
        detail
        or "The cursor is invalid. Pass the `next` value of a previous page unchanged.",
        errors=[{"location": "query", "field": "cursor", "detail": "Invalid cursor."}],
    )


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Page(Generic[RowT]):
    items: list[RowT]
    next_cursor: str | None


def keyset_page(
    session: Session,
    statement: sa.Select[Any],
    *,
    order_by: Sequence[sa.ColumnElement[Any]],
    codec: CursorCodec,
    scope: str,
    limit: int,
    cursor: str | None,
    descending: bool = False,
    scalars: bool = True,
) -> Page[Any]:
    """Run one page of ``statement`` ordered by ``order_by``, in one SQL statement.

    ``order_by`` must end with a unique column (the primary key), so the order is
    total and stable. Fetches ``limit + 1`` rows to learn whether a next page exists.
    """
    types = [column.type.python_type for column in order_by]
    if cursor:
        after = codec.decode(cursor, scope, types)
        key = sa.tuple_(*order_by)
        statement = statement.where(
            key < sa.tuple_(*after) if descending else key > sa.tuple_(*after)
        )
    ordering = [column.desc() if descending else column.asc() for column in order_by]
    statement = statement.order_by(*ordering).limit(limit + 1)
    result = session.execute(statement)
    rows = list(result.scalars() if scalars else result.all())
    if len(rows) <= limit:
        return Page(rows, None)
    rows = rows[:limit]
    last = rows[-1]
    values = [_column_value(last, column) for column in order_by]
    return Page(rows, codec.encode(scope, values))


def _column_value(row: Any, column: sa.ColumnElement[Any]) -> Any:
    key = getattr(column, "key", None) or getattr(column, "name", None)
    if hasattr(row, "_mapping") and column in row._mapping:
        return row._mapping[column]
    return getattr(row, key)


def page_body(
    items: list[Any], next_cursor: str | None
) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Return a flask-smorest result: the page envelope and a ``Link`` header."""
    headers = {}
    if next_cursor:
        params = request.args.to_dict()
        params["cursor"] = next_cursor
        headers["Link"] = f'<{request.base_url}?{urlencode(params)}>; rel="next"'
    return {"items": items, "next": next_cursor}, 200, headers


def scope_of(name: str, **filters: Any) -> str:
    """Build a cursor scope from a list name and its filters, in a stable order."""
    parts = [name]
    for key in sorted(filters):
        value = filters[key]
        if isinstance(value, list | tuple | set | frozenset):
            value = ",".join(sorted(str(item) for item in value))
        parts.append(f"{key}={_to_json(value)}")
    return "|".join(parts)


def current_codec() -> CursorCodec:
    """Return the cursor codec of the running app."""
    from flask import current_app

    return current_app.extensions["edulink.cursor_codec"]
