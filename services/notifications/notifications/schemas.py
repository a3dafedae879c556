"""Request and response schemas of the notifications API."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from edulink.pagination import PageQuerySchema, page_schema
from notifications.contracts import MAX_FAN_OUT_RECIPIENTS
from notifications.models import (
    AlertSeverity,
    TicketCategory,
    TicketPriority,
    TicketStatus,
)
from notifications.support import format_tracking_code

MAX_MESSAGE_LENGTH = 5000
MAX_ALERT_LENGTH = 2000


class Text(ma.fields.String):
    """A string PostgreSQL can store: no NUL character and no lone surrogate."""

    def _deserialize(self, value, attr, data, **kwargs):  # type: ignore[no-untyped-def]
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ma.ValidationError("Must not contain the NUL character.")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ma.ValidationError("Must be valid Unicode text.") from None
        return text


def _text(max_length: int, **kwargs: object) -> ma.fields.String:
    return Text(
        validate=validate.Length(min=1, max=max_length),
        **kwargs,  # type: ignore[arg-type]
    )


def _one_of(values: type) -> validate.OneOf:
    return validate.OneOf([member.value for member in values])


# Inbox


class NotificationSchema(ma.Schema):
    id = ma.fields.UUID()
    kind = ma.fields.String()
    title = ma.fields.String()
    body = ma.fields.String()
    entity_type = ma.fields.String(allow_none=True)
    entity_id = ma.fields.UUID(allow_none=True)
    refresh = ma.fields.Raw(
        metadata={"description": "Client query keys this notification changes"}
    )
    read = ma.fields.Function(lambda notification: notification.read_at is not None)
    read_at = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime()


class NotificationQuerySchema(PageQuerySchema):
    unread = ma.fields.Boolean(
        metadata={"description": "true: unread only; false: read only"}
    )


class UnreadCountSchema(ma.Schema):
    unread = ma.fields.Integer()


class ReadAllSchema(ma.Schema):
    until = ma.fields.AwareDateTime(
        metadata={"description": "Only notifications created up to this time"}
    )


class ReadAllResultSchema(ma.Schema):
    updated = ma.fields.Integer(metadata={"description": "Notifications marked read"})


class PreferenceSchema(ma.Schema):
    kind = ma.fields.String(dump_only=True)
    in_app = ma.fields.Boolean(dump_only=True, metadata={"description": "Always true"})
    email = ma.fields.Boolean(required=True)
    realtime = ma.fields.Boolean(required=True)


class PreferenceListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(PreferenceSchema))


# Real time


class SubscriptionRequestSchema(ma.Schema):
    """The form fields pusher-js posts to its channel authorisation endpoint."""

    socket_id = ma.fields.String(required=True, validate=validate.Length(max=50))
    channel_name = ma.fields.String(required=True, validate=validate.Length(max=200))


class SubscriptionAuthSchema(ma.Schema):
    auth = ma.fields.String(metadata={"description": "key:signature"})


# Support tickets


class TicketCreateSchema(ma.Schema):
    name = _text(200, metadata={"description": "Required when signed out"})
    email = ma.fields.Email(
        validate=validate.Length(max=320),
        metadata={"description": "Required when signed out"},
    )
    subject = _text(200, required=True)
    category = ma.fields.String(required=True, validate=_one_of(TicketCategory))
    priority = ma.fields.String(
        load_default=TicketPriority.NORMAL.value, validate=_one_of(TicketPriority)
    )
    message = _text(MAX_MESSAGE_LENGTH, required=True)


class TicketSchema(ma.Schema):
    id = ma.fields.UUID()
    tracking_code = ma.fields.Function(
        lambda ticket: format_tracking_code(ticket.tracking_code)
    )
    user_id = ma.fields.UUID(allow_none=True)
    name = ma.fields.String()
    email = ma.fields.String()
    subject = ma.fields.String()
    category = ma.fields.String()
    priority = ma.fields.String()
    status = ma.fields.String()
    assignee_id = ma.fields.UUID(allow_none=True)
    resolved_at = ma.fields.DateTime(allow_none=True)
    closed_at = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class TicketUpdateSchema(ma.Schema):
    status = ma.fields.String(validate=_one_of(TicketStatus))
    priority = ma.fields.String(validate=_one_of(TicketPriority))
    assignee_id = ma.fields.UUID(allow_none=True)


class TicketQuerySchema(PageQuerySchema):
    status = ma.fields.String(validate=_one_of(TicketStatus))
    assigned_to_me = ma.fields.Boolean(load_default=False)


class MessageSchema(ma.Schema):
    id = ma.fields.UUID()
    ticket_id = ma.fields.UUID()
    author_role = ma.fields.String()
    author_name = ma.fields.String()
    body = ma.fields.String()
    internal = ma.fields.Boolean()
    created_at = ma.fields.DateTime()


class MessageCreateSchema(ma.Schema):
    body = _text(MAX_MESSAGE_LENGTH, required=True)
    internal = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "A staff note the owner never sees"},
    )


class TrackingAccessSchema(ma.Schema):
    tracking_code = ma.fields.String(
        required=True, validate=validate.Length(min=1, max=40)
    )
    email = ma.fields.Email(required=True, validate=validate.Length(max=320))
    limit = ma.fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))
    cursor = ma.fields.String(load_default=None, validate=validate.Length(max=1024))


class TrackingReplySchema(ma.Schema):
    tracking_code = ma.fields.String(
        required=True, validate=validate.Length(min=1, max=40)
    )
    email = ma.fields.Email(required=True, validate=validate.Length(max=320))
    body = _text(MAX_MESSAGE_LENGTH, required=True)


MessagePageSchema = page_schema(MessageSchema, "TicketMessagePage")


class TrackedTicketSchema(ma.Schema):
    ticket = ma.fields.Nested(TicketSchema)
    messages = ma.fields.Nested(MessagePageSchema)


# Alerts


class AlertCreateSchema(ma.Schema):
    severity = ma.fields.String(required=True, validate=_one_of(AlertSeverity))
    message = _text(MAX_ALERT_LENGTH, required=True)
    expires_at = ma.fields.AwareDateTime(required=True)
    user_ids = ma.fields.List(
        ma.fields.UUID(),
        load_default=list,
        validate=validate.Length(max=MAX_FAN_OUT_RECIPIENTS),
        metadata={"description": "Also put the alert into these users' inboxes"},
    )


class AlertSchema(ma.Schema):
    id = ma.fields.UUID()
    severity = ma.fields.String()
    message = ma.fields.String()
    expires_at = ma.fields.DateTime()
    created_at = ma.fields.DateTime()


NotificationPageSchema = page_schema(NotificationSchema, "NotificationPage")
TicketPageSchema = page_schema(TicketSchema, "TicketPage")
AlertPageSchema = page_schema(AlertSchema, "AlertPage")
