"""HTTP endpoints of a service's ledger: ``GET <prefix>/ledger`` and its verify check.

System admins may read every entry. Anyone else must name one entity, and gets
its entries only when the service's ``can_view`` callback returns True.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy.orm import Session

from edulink.auth import Principal, require_principal
from edulink.db import get_database
from edulink.errors import BadRequest, NotFound
from edulink.ledger.ledger import Ledger
from edulink.pagination import (
    PageQuerySchema,
    current_codec,
    keyset_page,
    page_body,
    page_schema,
    scope_of,
)

# can_view(principal, entity_type, entity_id) returns True if the principal
# may read that entity's ledger. System admins are allowed before it is called.
CanView = Callable[[Principal, str, str], bool]
SessionProvider = Callable[[], Session]


class LedgerEntrySchema(ma.Schema):
    id = ma.fields.Integer()
    event_id = ma.fields.UUID()
    entity_type = ma.fields.String()
    entity_id = ma.fields.String()
    seq = ma.fields.Integer(metadata={"description": "Position in the entity's chain"})
    event_type = ma.fields.String()
    actor = ma.fields.String()
    old = ma.fields.Raw(allow_none=True)
    new = ma.fields.Raw(allow_none=True)
    occurred_at = ma.fields.DateTime()
    recorded_at = ma.fields.DateTime()
    request_id = ma.fields.String(allow_none=True)
    prev_hash = ma.fields.String(allow_none=True)
    hash = ma.fields.String()


LedgerPageSchema = page_schema(LedgerEntrySchema, "LedgerPageSchema")


class LedgerQuerySchema(PageQuerySchema):
    entity_type = ma.fields.String(validate=ma.validate.Length(min=1, max=100))
    entity_id = ma.fields.String(validate=ma.validate.Length(min=1, max=200))
    event_type = ma.fields.String(validate=ma.validate.Length(min=1, max=200))
    since = ma.fields.AwareDateTime(
        metadata={"description": "Only events that occurred at or after this time"}
    )
    until = ma.fields.AwareDateTime(
        metadata={"description": "Only events that occurred before this time"}
    )


class EntityQuerySchema(ma.Schema):
    entity_type = ma.fields.String(
        required=True, validate=ma.validate.Length(min=1, max=100)
    )
    entity_id = ma.fields.String(
        required=True, validate=ma.validate.Length(min=1, max=200)
    )


class BrokenLinkSchema(ma.Schema):
    seq = ma.fields.Integer()
    entry_id = ma.fields.Integer()
    reason = ma.fields.String()


class VerificationSchema(ma.Schema):
    entity_type = ma.fields.String()
    entity_id = ma.fields.String()
    entries = ma.fields.Integer(metadata={"description": "Entries checked"})
    valid = ma.fields.Boolean()
    first_broken = ma.fields.Nested(BrokenLinkSchema, allow_none=True)


def _default_session() -> Session:
    return get_database(current_app).session


def ledger_blueprint(
    ledger: Ledger,
    *,
    url_prefix: str,
    can_view: CanView,
    session: SessionProvider = _default_session,
    name: str = "ledger",
) -> Blueprint:
    """Build the blueprint of ``GET {url_prefix}/ledger`` and ``.../ledger/verify``."""
    blueprint = Blueprint(
        name, __name__, url_prefix=url_prefix, description="Append-only event log"
    )

    @blueprint.route("/ledger")
    class LedgerEntries(MethodView):
        @blueprint.arguments(LedgerQuerySchema, location="query")
        @blueprint.response(200, LedgerPageSchema)
        def get(self, query: dict[str, Any]) -> Any:
            """List ledger entries in the order they were appended.

            Filter by entity, event type and the time the event occurred.
            Callers other than system admins must name one entity they own.
            """
            _authorize(can_view, query.get("entity_type"), query.get("entity_id"))
            page = _list_entries(ledger, session(), query)
            return page_body(page.items, page.next_cursor)

    @blueprint.route("/ledger/verify")
    class LedgerVerification(MethodView):
        @blueprint.arguments(EntityQuerySchema, location="query")
        @blueprint.response(200, VerificationSchema)
        def get(self, query: dict[str, Any]) -> dict[str, Any]:
            """Recompute one entity's hash chain and report its first broken link."""
            entity_type, entity_id = query["entity_type"], query["entity_id"]
            _authorize(can_view, entity_type, entity_id)
            report = ledger.verify(session(), entity_type, entity_id)
            return {
                "entity_type": report.entity_type,
                "entity_id": report.entity_id,
                "entries": report.entries,
                "valid": report.valid,
                "first_broken": report.first_broken,
            }

    return blueprint


def _authorize(
    can_view: CanView, entity_type: str | None, entity_id: str | None
) -> None:
    principal = require_principal()
    if principal.is_system_admin:
        return
    if entity_type is None or entity_id is None:
        raise BadRequest(
            "Give entity_type and entity_id: only system admins may list the "
            "whole ledger."
        )
    if not can_view(principal, entity_type, entity_id):
        # Respond as for a missing entity, so its existence does not leak.
        raise NotFound(f"No ledger entries of {entity_type} {entity_id} exist.")


def _list_entries(ledger: Ledger, session: Session, query: dict[str, Any]) -> Any:
    table = ledger.table
    statement = sa.select(table)
    filters = {}
    for name in ("entity_type", "entity_id", "event_type"):
        if query.get(name) is not None:
            statement = statement.where(table.c[name] == query[name])
            filters[name] = query[name]
    if query.get("since") is not None:
        statement = statement.where(table.c.occurred_at >= query["since"])
        filters["since"] = query["since"]
    if query.get("until") is not None:
        statement = statement.where(table.c.occurred_at < query["until"])
        filters["until"] = query["until"]
    return keyset_page(
        session,
        statement,
        order_by=[table.c.id],
        codec=current_codec(),
        scope=scope_of(f"ledger:{table.fullname}", **filters),
        limit=query["limit"],
        cursor=query["cursor"],
        scalars=False,
    )
