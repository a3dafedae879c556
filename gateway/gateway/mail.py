"""Account emails: verification, password reset and invitation links.

The gateway does not send mail itself. :class:`JobOutbox` enqueues a
``notifications.send_email`` job in the caller's transaction, so the email
goes out only if the account change commits; the notifications service's
worker delivers it. :class:`MemoryOutbox` keeps the messages in a list, for
tests and for local runs without a notifications worker.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Protocol

import pydantic
from sqlalchemy.orm import Session

from edulink.jobs import JobContract, Queue

log = logging.getLogger(__name__)


class SendEmail(pydantic.BaseModel):
    """Payload of ``notifications.send_email``: a templated email to one address."""

    model_config = pydantic.ConfigDict(extra="forbid")

    to: str
    template: str
    context: dict[str, str]


# NOTE: the notifications service consumes this job and must accept this
# payload; the contract belongs in a shared module once that service exists.
SEND_EMAIL = JobContract(
    name="notifications.send_email",
    version=1,
    payload=SendEmail,
    consumer="notifications",
)


class EmailOutbox(Protocol):
    """Destination of account emails. ``send`` joins the caller's transaction."""

    def send(
        self, session: Session, *, to: str, template: str, context: dict[str, str]
    ) -> None: ...


class JobOutbox:
    """Enqueue each email as a ``notifications.send_email`` job."""

    def send(
        self, session: Session, *, to: str, template: str, context: dict[str, str]
    ) -> None:
        job = Queue(SEND_EMAIL.consumer or "notifications", session=session).enqueue(
            SEND_EMAIL, to=to, template=template, context=context
        )
        log.info("enqueued %s email as job %s", template, job.id)


@dataclass
class SentEmail:
    to: str
    template: str
    context: dict[str, str]


@dataclass
class MemoryOutbox:
    """Keep emails in :attr:`sent`, newest last. Nothing is delivered."""

    sent: list[SentEmail] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def send(
        self, session: Session, *, to: str, template: str, context: dict[str, str]
    ) -> None:
        with self._lock:
            self.sent.append(SentEmail(to=to, template=template, context=context))
        log.info("kept %s email in memory; it is not delivered", template)

    def last(self, to: str, template: str) -> SentEmail:
        """Return the newest email of ``template`` sent to ``to``."""
        with self._lock:
            for email in reversed(self.sent):
                if email.to == to and email.template == template:
                    return email
        raise LookupError(f"no {template} email was sent to {to}")
