"""Handlers of the notifications queue.

- ``notifications.notify``: store a notification, then enqueue its deliveries.
- ``notifications.push_event``: send one real-time event through Pusher.
- ``notifications.send_email``: render a template and send it over SMTP.
- ``notifications.fan_out_alert``: put an alert into many inboxes at once.

Pusher and SMTP failures raise, so the worker retries the job with its
contract's backoff; input that can never succeed fails the job at once.
"""

from __future__ import annotations

import logging

from flask import current_app

from edulink.errors import NotFound
from edulink.jobs import JobContext, JobRegistry, PermanentJobError
from notifications import alerts, services
from notifications.contracts import (
    FAN_OUT_ALERT,
    NOTIFY,
    PUSH_EVENT,
    QUEUE,
    SEND_EMAIL,
    FanOutAlert,
    Notify,
    PushEvent,
    SendEmail,
)
from notifications.mail import (
    EmailRejected,
    EmailRenderer,
    EmailSender,
    TemplateError,
    build_message,
)
from notifications.realtime import (
    MAX_EVENT_BYTES,
    RealtimePublisher,
    RealtimeRejected,
)
from notifications.settings import NotificationsSettings

log = logging.getLogger(__name__)

PUBLISHER_EXTENSION = "notifications.publisher"
SENDER_EXTENSION = "notifications.sender"
RENDERER_EXTENSION = "notifications.renderer"

registry = JobRegistry(QUEUE)


def _settings() -> NotificationsSettings:
    return current_app.extensions["edulink.settings"]


def publisher() -> RealtimePublisher:
    return current_app.extensions[PUBLISHER_EXTENSION]


def sender() -> EmailSender:
    return current_app.extensions[SENDER_EXTENSION]


@registry.handler(NOTIFY)
def notify(payload: Notify, context: JobContext) -> None:
    """Store the notification once per idempotency key and enqueue its deliveries."""
    services.notify(
        context.session,
        notify=payload,
        idempotency_key=payload.idempotency_key or context.id,
        app_url=_settings().app_url,
    )


@registry.handler(PUSH_EVENT)
def push_event(payload: PushEvent, context: JobContext) -> None:
    size = len(payload.data.encode("utf-8"))
    if size > MAX_EVENT_BYTES:
        raise PermanentJobError(
            f"event {payload.event} has {size} bytes of data, above Pusher's "
            f"limit of {MAX_EVENT_BYTES}"
        )
    try:
        publisher().trigger(
            payload.channels, payload.event, payload.data, socket_id=payload.socket_id
        )
    except RealtimeRejected as error:
        raise PermanentJobError(str(error)) from error
    log.info(
        "sent %s to %d channels on attempt %d",
        payload.event,
        len(payload.channels),
        context.attempt,
    )


@registry.handler(SEND_EMAIL)
def send_email(payload: SendEmail, context: JobContext) -> None:
    settings = _settings()
    renderer: EmailRenderer = current_app.extensions[RENDERER_EXTENSION]
    try:
        rendered = renderer.render(payload.template, payload.context)
    except TemplateError as error:
        raise PermanentJobError(str(error)) from error
    domain = settings.email_from.rpartition("@")[2].rstrip(">").strip() or "edulink"
    message = build_message(
        sender=settings.email_from,
        to=payload.to,
        rendered=rendered,
        # One id per job, so a resent copy can be recognised as the same email.
        message_id=f"<{context.id.replace(':', '.')}@{domain}>",
    )
    try:
        sender().send(message)
    except EmailRejected as error:
        raise PermanentJobError(str(error)) from error
    log.info("sent %s email on attempt %d", payload.template, context.attempt)


@registry.handler(FAN_OUT_ALERT, concurrency_limit=1)
def fan_out_alert(payload: FanOutAlert, context: JobContext) -> None:
    try:
        alerts.fan_out_alert(
            context.session, alert_id=payload.alert_id, user_ids=payload.user_ids
        )
    except NotFound as error:
        raise PermanentJobError(error.detail) from error
