"""Email: Jinja2 templates rendered to text and HTML, sent over SMTP.

Each template is three files under ``templates/email/``: ``NAME.subject.txt``,
``NAME.txt`` and ``NAME.html``. HTML is autoescaped, and a variable missing
from the context fails the rendering instead of leaving a blank.

:class:`SmtpSender` talks to an SMTP server with the standard library;
:class:`MemorySender` keeps messages in a list. ``EMAIL_BACKEND`` picks one.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Protocol

import jinja2

from notifications.settings import NotificationsSettings

log = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).parent / "templates" / "email"
MAX_SUBJECT_LENGTH = 200


class EmailDeliveryError(Exception):
    """Sending failed in a way that a retry may fix: refused, timed out, 4xx."""


class EmailRejected(Exception):
    """The server rejected the message permanently (5xx); a retry cannot help."""


class TemplateError(ValueError):
    """The template does not exist, or the context lacks one of its variables."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


class EmailRenderer:
    """Renders the email templates in ``template_dir``."""

    def __init__(self, template_dir: Path = TEMPLATE_DIR) -> None:
        self._environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(template_dir),
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html",), default_for_string=False
            ),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )

    def render(self, template: str, context: Mapping[str, str]) -> RenderedEmail:
        try:
            subject = self._render(f"{template}.subject.txt", context)
            text = self._render(f"{template}.txt", context)
            html = self._render(f"{template}.html", context)
        except jinja2.TemplateNotFound as error:
            raise TemplateError(f"no email template {template!r} ({error})") from None
        except jinja2.UndefinedError as error:
            raise TemplateError(
                f"email template {template!r} needs a context value: {error}"
            ) from None
        # A header value must be one line.
        subject = " ".join(subject.split())[:MAX_SUBJECT_LENGTH]
        return RenderedEmail(subject=subject, text=text, html=html)

    def _render(self, name: str, context: Mapping[str, str]) -> str:
        return self._environment.get_template(name).render(**context)


def build_message(
    *, sender: str, to: str, rendered: RenderedEmail, message_id: str
) -> EmailMessage:
    """Build a multipart/alternative message with the text part first."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = rendered.subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


class EmailSender(Protocol):
    """Delivers one message to the addresses in its To header."""

    def send(self, message: EmailMessage) -> None:
        """Send ``message``; raise EmailDeliveryError or EmailRejected on failure."""
        ...


class SmtpSender:
    """Sends through one SMTP connection per message, as configured in settings."""

    def __init__(self, settings: NotificationsSettings) -> None:
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        self.security = settings.smtp_security
        self.timeout = settings.smtp_timeout
        self.username = settings.smtp_username
        self._password = settings.smtp_password

    def send(self, message: EmailMessage) -> None:
        try:
            with self._connect() as smtp:
                if self.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if self.username and self._password is not None:
                    smtp.login(self.username, self._password.get_secret_value())
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            if all(code >= 500 for code in codes):
                raise EmailRejected(
                    f"{self.host}:{self.port} refused every recipient: {codes}"
                ) from error
            raise EmailDeliveryError(
                f"{self.host}:{self.port} deferred the recipients: {codes}"
            ) from error
        except smtplib.SMTPAuthenticationError as error:
            raise EmailDeliveryError(
                f"SMTP login as {self.username} at {self.host}:{self.port} failed: "
                f"{error.smtp_code}"
            ) from error
        except smtplib.SMTPResponseException as error:
            if error.smtp_code >= 500:
                raise EmailRejected(
                    f"{self.host}:{self.port} rejected the message: "
                    f"{error.smtp_code} {error.smtp_error!r}"
                ) from error
            raise EmailDeliveryError(
                f"{self.host}:{self.port} deferred the message: {error.smtp_code}"
            ) from error
        except (smtplib.SMTPException, OSError) as error:
            raise EmailDeliveryError(
                f"sending through {self.host}:{self.port} failed: {error!r}"
            ) from error

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            return smtplib.SMTP_SSL(
                self.host,
                self.port,
                timeout=self.timeout,
                context=ssl.create_default_context(),
            )
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)


@dataclass
class MemorySender:
    """Keeps sent messages in :attr:`messages`, newest last. Thread-safe."""

    messages: list[EmailMessage] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def send(self, message: EmailMessage) -> None:
        with self._lock:
            self.messages.append(message)

    def sent_to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if m["To"] == address]


def sender_from_settings(settings: NotificationsSettings) -> EmailSender:
    if settings.email_backend == "memory":
        return MemorySender()
    return SmtpSender(settings)
