"""HTTP endpoints of the notifications service. Business rules live elsewhere:
``services`` (inbox), ``support`` (tickets), ``alerts`` and ``subscriptions``."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, current_app, request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from edulink.auth import Role, current_principal, require_principal
from edulink.caching import (
    IF_MATCH_PARAMETER,
    entity_response,
    entity_tag,
    require_if_match,
)
from edulink.errors import BadRequest
from edulink.pagination import PageQuerySchema, current_codec, page_body
from notifications import alerts, services, subscriptions, support
from notifications.db import db
from notifications.jobs import publisher
from notifications.realtime import SOCKET_ID
from notifications.schemas import (
    AlertCreateSchema,
    AlertPageSchema,
    AlertSchema,
    MessageCreateSchema,
    MessagePageSchema,
    MessageSchema,
    NotificationPageSchema,
    NotificationQuerySchema,
    NotificationSchema,
    PreferenceListSchema,
    PreferenceSchema,
    ReadAllResultSchema,
    ReadAllSchema,
    SubscriptionAuthSchema,
    SubscriptionRequestSchema,
    TicketCreateSchema,
    TicketPageSchema,
    TicketQuerySchema,
    TicketSchema,
    TicketUpdateSchema,
    TrackedTicketSchema,
    TrackingAccessSchema,
    TrackingReplySchema,
    UnreadCountSchema,
)

notifications_blp = Blueprint(
    "notifications",
    __name__,
    url_prefix="/api/v1/notifications",
    description="Your inbox and delivery preferences",
)
realtime_blp = Blueprint(
    "realtime",
    __name__,
    url_prefix="/api/v1/realtime",
    description="Pusher channel authorisation",
)
support_blp = Blueprint(
    "support", __name__, url_prefix="/api/v1/support", description="Support tickets"
)
alerts_blp = Blueprint(
    "alerts", __name__, url_prefix="/api/v1/alerts", description="Platform alerts"
)

USERS = tuple(role for role in Role if role is not Role.service)
SOCKET_HEADER = {
    "in": "header",
    "name": "X-Socket-ID",
    "required": False,
    "description": "Your Pusher socket id; the event about this change skips it",
    "schema": {"type": "string"},
}


def _socket_id() -> str | None:
    value = request.headers.get("X-Socket-ID")
    if value is None:
        return None
    if not SOCKET_ID.match(value):
        raise BadRequest(
            "X-Socket-ID must be a Pusher socket id such as 1234.5678, or absent."
        )
    return value


def _app_url() -> str | None:
    return current_app.extensions["edulink.settings"].app_url


# Inbox


@notifications_blp.route("")
class Inbox(MethodView):
    @notifications_blp.arguments(NotificationQuerySchema, location="query")
    @notifications_blp.response(200, NotificationPageSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """List your notifications, newest first; `unread` filters."""
        actor = require_principal(*USERS)
        page = services.list_notifications(
            db.session,
            actor=actor,
            codec=current_codec(),
            limit=query["limit"],
            cursor=query["cursor"],
            unread=query.get("unread"),
        )
        return page_body(page.items, page.next_cursor)


@notifications_blp.route("/unread-count")
class UnreadCount(MethodView):
    @notifications_blp.response(200, UnreadCountSchema)
    def get(self) -> Any:
        """Count your unread notifications."""
        actor = require_principal(*USERS)
        return {"unread": services.unread_count(db.session, actor=actor)}


@notifications_blp.route("/<uuid:notification_id>/read")
class ReadOne(MethodView):
    @notifications_blp.response(200, NotificationSchema)
    @notifications_blp.doc(parameters=[SOCKET_HEADER])
    def post(self, notification_id: uuid.UUID) -> Any:
        """Mark one notification read."""
        actor = require_principal(*USERS)
        notification = services.mark_read(
            db.session,
            actor=actor,
            notification_id=notification_id,
            socket_id=_socket_id(),
        )
        db.session.commit()
        return notification


@notifications_blp.route("/read-all")
class ReadAll(MethodView):
    @notifications_blp.arguments(ReadAllSchema)
    @notifications_blp.response(200, ReadAllResultSchema)
    @notifications_blp.doc(parameters=[SOCKET_HEADER])
    def post(self, data: dict[str, Any]) -> Any:
        """Mark all your notifications read, or those created up to `until`."""
        actor = require_principal(*USERS)
        updated = services.mark_all_read(
            db.session, actor=actor, until=data.get("until"), socket_id=_socket_id()
        )
        db.session.commit()
        return {"updated": updated}


@notifications_blp.route("/preferences")
class Preferences(MethodView):
    @notifications_blp.response(200, PreferenceListSchema)
    def get(self) -> Any:
        """List email and real-time delivery per kind; the inbox is always on."""
        actor = require_principal(*USERS)
        return {"items": services.list_preferences(db.session, actor=actor)}


@notifications_blp.route("/preferences/<kind>")
class PreferenceByKind(MethodView):
    @notifications_blp.arguments(PreferenceSchema)
    @notifications_blp.response(200, PreferenceSchema)
    def put(self, data: dict[str, Any], kind: str) -> Any:
        """Choose email and real-time delivery for one kind."""
        actor = require_principal(*USERS)
        preference = services.set_preference(
            db.session,
            actor=actor,
            kind=kind,
            email=data["email"],
            realtime=data["realtime"],
        )
        db.session.commit()
        return preference


# Real time


@realtime_blp.route("/auth")
class ChannelAuthorization(MethodView):
    @realtime_blp.arguments(SubscriptionRequestSchema, location="form")
    @realtime_blp.response(200, SubscriptionAuthSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Sign a private channel subscription, as pusher-js requests it.

        Allowed: your own user channel, your organisations' channels, tickets
        you own, and for support staff every ticket and the support channel.
        """
        actor = require_principal(*USERS)
        subscriptions.authorize_subscription(
            db.session,
            actor=actor,
            socket_id=data["socket_id"],
            channel=data["channel_name"],
        )
        return publisher().authenticate(data["channel_name"], data["socket_id"])


# Support tickets


@support_blp.route("/tickets")
class Tickets(MethodView):
    @support_blp.arguments(TicketQuerySchema, location="query")
    @support_blp.response(200, TicketPageSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """List tickets: all of them for support staff, your own for others."""
        actor = require_principal(*USERS)
        page = support.list_tickets(
            db.session,
            actor=actor,
            codec=current_codec(),
            limit=query["limit"],
            cursor=query["cursor"],
            status=query.get("status"),
            assigned_to_me=query["assigned_to_me"],
        )
        return page_body(page.items, page.next_cursor)

    @support_blp.arguments(TicketCreateSchema)
    @support_blp.response(201, TicketSchema)
    @support_blp.doc(security=[{}, {"bearerAuth": []}], parameters=[SOCKET_HEADER])
    def post(self, data: dict[str, Any]) -> Response:
        """Open a ticket, signed in or not; the response carries its tracking code."""
        actor = current_principal()
        ticket = support.open_ticket(
            db.session, actor=actor, data=data, socket_id=_socket_id()
        )
        db.session.commit()
        location = url_for("support.TicketById", ticket_id=ticket.id)
        return entity_response(TicketSchema, ticket, status=201, location=location)


@support_blp.route("/tickets/<uuid:ticket_id>")
class TicketById(MethodView):
    @support_blp.response(200, TicketSchema)
    @support_blp.alt_response(304, description="Not modified")
    def get(self, ticket_id: uuid.UUID) -> Response:
        """Read a ticket you own, or any ticket as support staff."""
        actor = require_principal(*USERS)
        ticket = support.get_ticket(db.session, actor=actor, ticket_id=ticket_id)
        return entity_response(TicketSchema, ticket)

    @support_blp.arguments(TicketUpdateSchema)
    @support_blp.response(200, TicketSchema)
    @support_blp.doc(parameters=[IF_MATCH_PARAMETER, SOCKET_HEADER])
    def patch(self, changes: dict[str, Any], ticket_id: uuid.UUID) -> Response:
        """Change status, priority or assignee (staff); owners may only close."""
        actor = require_principal(*USERS)
        ticket = support.get_ticket(db.session, actor=actor, ticket_id=ticket_id)
        require_if_match(entity_tag(ticket.id, ticket.version))
        support.update_ticket(
            db.session,
            actor=actor,
            ticket=ticket,
            changes=changes,
            socket_id=_socket_id(),
        )
        db.session.commit()
        return entity_response(TicketSchema, ticket)


@support_blp.route("/tickets/<uuid:ticket_id>/messages")
class TicketMessages(MethodView):
    @support_blp.arguments(PageQuerySchema, location="query")
    @support_blp.response(200, MessagePageSchema)
    def get(self, query: dict[str, Any], ticket_id: uuid.UUID) -> Any:
        """List a ticket's messages, oldest first; staff also see internal notes."""
        actor = require_principal(*USERS)
        ticket = support.get_ticket(db.session, actor=actor, ticket_id=ticket_id)
        page = support.list_messages(
            db.session,
            ticket=ticket,
            include_internal=support.is_staff(actor),
            codec=current_codec(),
            limit=query["limit"],
            cursor=query["cursor"],
        )
        return page_body(page.items, page.next_cursor)

    @support_blp.arguments(MessageCreateSchema)
    @support_blp.response(201, MessageSchema)
    @support_blp.doc(parameters=[SOCKET_HEADER])
    def post(self, data: dict[str, Any], ticket_id: uuid.UUID) -> Any:
        """Reply to a ticket; staff may add an internal note instead."""
        actor = require_principal(*USERS)
        ticket = support.get_ticket(db.session, actor=actor, ticket_id=ticket_id)
        message = support.reply(
            db.session,
            ticket=ticket,
            author=support.author_of(actor, ticket),
            body=data["body"],
            internal=data["internal"],
            socket_id=_socket_id(),
            app_url=_app_url(),
        )
        db.session.commit()
        return message, 201


@support_blp.route("/tickets/access")
class TrackedTicket(MethodView):
    @support_blp.arguments(TrackingAccessSchema)
    @support_blp.response(200, TrackedTicketSchema)
    @support_blp.doc(security=[{}])
    def post(self, data: dict[str, Any]) -> Any:
        """Read a ticket by tracking code and email, signed out, with its replies.

        A POST keeps the email address out of URLs and access logs.
        """
        ticket = support.find_by_tracking_code(
            db.session, tracking_code=data["tracking_code"], email=data["email"]
        )
        page = support.list_messages(
            db.session,
            ticket=ticket,
            include_internal=False,
            codec=current_codec(),
            limit=data["limit"],
            cursor=data["cursor"],
        )
        return {
            "ticket": ticket,
            "messages": {"items": page.items, "next": page.next_cursor},
        }


@support_blp.route("/tickets/access/messages")
class TrackedTicketMessages(MethodView):
    @support_blp.arguments(TrackingReplySchema)
    @support_blp.response(201, MessageSchema)
    @support_blp.doc(security=[{}])
    def post(self, data: dict[str, Any]) -> Any:
        """Reply to a ticket by tracking code and email, signed out."""
        ticket = support.find_by_tracking_code(
            db.session, tracking_code=data["tracking_code"], email=data["email"]
        )
        message = support.reply(
            db.session,
            ticket=ticket,
            author=support.owner_author(ticket),
            body=data["body"],
            internal=False,
            socket_id=None,
        )
        db.session.commit()
        return message, 201


# Alerts


@alerts_blp.route("")
class Alerts(MethodView):
    @alerts_blp.arguments(PageQuerySchema, location="query")
    @alerts_blp.response(200, AlertPageSchema)
    @alerts_blp.doc(security=[{}, {"bearerAuth": []}])
    def get(self, query: dict[str, Any]) -> Any:
        """List the alerts that have not expired, newest first. No sign-in needed."""
        page = alerts.list_active(
            db.session,
            codec=current_codec(),
            limit=query["limit"],
            cursor=query["cursor"],
        )
        return page_body(page.items, page.next_cursor)

    @alerts_blp.arguments(AlertCreateSchema)
    @alerts_blp.response(201, AlertSchema)
    @alerts_blp.doc(parameters=[SOCKET_HEADER])
    def post(self, data: dict[str, Any]) -> Any:
        """Post an alert to every client (system admins); `user_ids` fills inboxes."""
        actor = require_principal(Role.system_admin)
        alert = alerts.create_alert(
            db.session,
            actor=actor,
            severity=data["severity"],
            message=data["message"],
            expires_at=data["expires_at"],
            user_ids=data["user_ids"],
            socket_id=_socket_id(),
        )
        db.session.commit()
        return alert, 201


@alerts_blp.route("/<uuid:alert_id>")
class AlertById(MethodView):
    @alerts_blp.response(204)
    def delete(self, alert_id: uuid.UUID) -> None:
        """End an alert now (system admins)."""
        require_principal(Role.system_admin)
        alerts.end_alert(db.session, alert_id=alert_id, socket_id=_socket_id())
        db.session.commit()
