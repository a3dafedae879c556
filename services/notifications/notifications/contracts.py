"""Job contracts of the notifications queue: payload schemas and retry policies.

Other services produce ``notifications.notify`` (a message for a user's or an
organisation's inbox) and ``notifications.send_email`` (a templated email to
one address). Each keeps its own copy of the payload model, and
``tests/contracts`` checks that every producer's model fits these.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import pydantic

from edulink.jobs import JobContract, Retry

QUEUE = "notifications"

MAX_REFRESH_KEYS = 20
MAX_FAN_OUT_RECIPIENTS = 20_000

Name = Annotated[str, pydantic.StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
SocketId = Annotated[str, pydantic.StringConstraints(pattern=r"^\d{1,20}\.\d{1,20}$")]
EmailAddress = Annotated[
    str,
    pydantic.StringConstraints(
        strip_whitespace=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$"
    ),
]
# One TanStack Query key, such as ["applications", "<id>"].
QueryKey = Annotated[
    list[Annotated[str, pydantic.StringConstraints(max_length=100)] | int],
    pydantic.Field(min_length=1, max_length=8),
]


class Payload(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class Notify(Payload):
    """A message for one user's inbox, or the shared inbox of one organisation.

    ``recipient_email`` enables email delivery (subject to the user's
    preferences); without it the message goes to the inbox and real time
    only. ``socket_id`` is the acting client's Pusher connection, from its
    ``X-Socket-ID`` header, which is left out of the real-time event.
    ``idempotency_key`` defaults to the job id.
    """

    recipient_user_id: uuid.UUID | None = None
    recipient_org_id: uuid.UUID | None = None
    recipient_email: EmailAddress | None = None
    recipient_name: (
        Annotated[str, pydantic.StringConstraints(max_length=200)] | None
    ) = None
    kind: Name
    title: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=200)]
    body: Annotated[str, pydantic.StringConstraints(max_length=10_000)]
    entity_type: Name | None = None
    entity_id: uuid.UUID | None = None
    refresh: (
        Annotated[list[QueryKey], pydantic.Field(max_length=MAX_REFRESH_KEYS)] | None
    ) = None
    socket_id: SocketId | None = None
    idempotency_key: (
        Annotated[str, pydantic.StringConstraints(min_length=1, max_length=200)] | None
    ) = None

    @pydantic.model_validator(mode="after")
    def _one_recipient(self) -> Notify:
        if (self.recipient_user_id is None) == (self.recipient_org_id is None):
            raise ValueError("set exactly one of recipient_user_id, recipient_org_id")
        return self


class SendEmail(Payload):
    """A templated email to one address; the template names files in templates/."""

    to: EmailAddress
    template: Name
    context: dict[str, str]


class PushEvent(Payload):
    """One real-time event; ``data`` is JSON text of at most 10,240 bytes."""

    channels: Annotated[list[str], pydantic.Field(min_length=1, max_length=100)]
    event: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=200)]
    data: str
    socket_id: SocketId | None = None


class FanOutAlert(Payload):
    """Put an alert into the inbox of each listed user."""

    alert_id: uuid.UUID
    user_ids: Annotated[
        list[uuid.UUID], pydantic.Field(min_length=1, max_length=MAX_FAN_OUT_RECIPIENTS)
    ]


NOTIFY = JobContract(
    name="notifications.notify",
    version=1,
    payload=Notify,
    consumer=QUEUE,
    retry=Retry(max=5),
)
# Exponential backoff from 1 s up to 300 s: about 20 minutes before giving up.
SEND_EMAIL = JobContract(
    name="notifications.send_email",
    version=1,
    payload=SendEmail,
    consumer=QUEUE,
    retry=Retry(max=12),
)
# A real-time event is worth little late; the inbox keeps the message anyway.
PUSH_EVENT = JobContract(
    name="notifications.push_event",
    version=1,
    payload=PushEvent,
    consumer=QUEUE,
    retry=Retry(max=8, interval=[1, 2, 4, 8, 15, 30, 60, 120]),
)
FAN_OUT_ALERT = JobContract(
    name="notifications.fan_out_alert",
    version=1,
    payload=FanOutAlert,
    consumer=QUEUE,
    retry=Retry(max=5),
)
