"""Email: templates, autoescaping, SMTP delivery and its failures."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller

from notifications.contracts import SEND_EMAIL
from notifications.mail import (
    EmailDeliveryError,
    EmailRejected,
    EmailRenderer,
    EmailSender,
    MemorySender,
    SmtpSender,
    TemplateError,
    build_message,
)
from notifications.mail_sink import SinkHandler, start_sink
from notifications.realtime import MemoryPublisher, PusherPublisher, RealtimePublisher
from notifications.settings import NotificationsSettings
from tests.notifications.helpers import enqueue, free_port, job_statuses

GATEWAY_EMAILS = [
    ("verify_email", {"name": "Amina", "token": "t1", "link": "https://x/verify?t=1"}),
    ("reset_password", {"name": "Amina", "token": "t2", "link": "https://x/reset?t=2"}),
    (
        "invitation",
        {"role": "employer_admin", "token": "t3", "link": "https://x/i?t=3"},
    ),
]


def smtp_settings(port: int) -> NotificationsSettings:
    return NotificationsSettings(
        database_url="postgresql://localhost/unused",
        jwt_issuer="i",
        jwt_audience="a",
        jwks_file="/dev/null",
        cursor_secret="0123456789abcdef",
        realtime_backend="memory",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_timeout=2,
    )


@pytest.fixture
def sink() -> Iterator[tuple[SinkHandler, int]]:
    handler = SinkHandler()
    port = free_port()
    controller = start_sink(handler, port=port)
    yield handler, port
    controller.stop()


def message_to(address: str, title: str = "Hello"):
    rendered = EmailRenderer().render("notification", {"title": title, "body": "Body"})
    return build_message(
        sender="Edulink <no-reply@edulink.test>",
        to=address,
        rendered=rendered,
        message_id="<m1@edulink.test>",
    )


@pytest.mark.parametrize(("template", "context"), GATEWAY_EMAILS)
def test_gateway_templates_render(template, context) -> None:
    rendered = EmailRenderer().render(template, context)
    assert rendered.subject
    assert context["link"] in rendered.text
    assert context["link"] in rendered.html


def test_html_is_autoescaped() -> None:
    rendered = EmailRenderer().render(
        "notification", {"title": "<b>Hi</b>", "body": "<script>alert(1)</script>"}
    )
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;" in rendered.html
    assert "<script>alert(1)</script>" in rendered.text


def test_subject_is_one_line() -> None:
    rendered = EmailRenderer().render(
        "notification", {"title": "Line one\nBcc: x@evil.example", "body": "b"}
    )
    assert "\n" not in rendered.subject


def test_missing_context_is_template_error() -> None:
    with pytest.raises(TemplateError, match="link"):
        EmailRenderer().render("verify_email", {"name": "A", "token": "t"})


def test_unknown_template_is_template_error() -> None:
    with pytest.raises(TemplateError):
        EmailRenderer().render("base", {})


def test_smtp_delivers_both_parts(sink) -> None:
    handler, port = sink
    SmtpSender(smtp_settings(port)).send(message_to("amina@kilima.example"))

    received = handler.sent_to("amina@kilima.example")
    assert len(received) == 1
    assert received[0].get_body(("plain",)) is not None
    assert received[0].get_body(("html",)) is not None


def test_refused_connection_is_retryable() -> None:
    port = free_port()
    with pytest.raises(EmailDeliveryError):
        SmtpSender(smtp_settings(port)).send(message_to("a@b.example"))


class RejectingHandler(SinkHandler):
    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
        return "550 5.1.1 No such user"


def test_permanent_rejection_is_not_retried() -> None:
    port = free_port()
    controller = Controller(RejectingHandler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with pytest.raises(EmailRejected):
            SmtpSender(smtp_settings(port)).send(message_to("nobody@kilima.example"))
    finally:
        controller.stop()


def test_sink_keeps_eml_files(tmp_path) -> None:
    handler = SinkHandler(tmp_path / "mail")
    port = free_port()
    controller = start_sink(handler, port=port)
    try:
        SmtpSender(smtp_settings(port)).send(message_to("a@b.example"))
    finally:
        controller.stop()
    files = list((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 1
    assert b"a@b.example" in files[0].read_bytes()


def test_gateway_job_payload_is_sent(jobs, sender) -> None:
    enqueue(
        SEND_EMAIL,
        to="new@kilima.example",
        template="verify_email",
        context={"name": "Amina", "token": "t", "link": "https://app/verify?token=t"},
    )
    jobs()

    (message,) = sender.sent_to("new@kilima.example")
    assert message["Message-ID"].endswith("@edulink.example>")
    assert "https://app/verify?token=t" in message.get_body(("plain",)).get_content()


def test_unknown_template_fails_job_at_once(jobs, sender) -> None:
    enqueue(SEND_EMAIL, to="a@b.example", template="no_such_template", context={})
    jobs()

    assert job_statuses("notifications.send_email") == ["failed"]
    assert sender.messages == []


def _public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(cls).items()
        if callable(member) and not name.startswith("_")
    }


@pytest.mark.parametrize(
    ("interface", "implementations"),
    [
        (EmailSender, (SmtpSender, MemorySender)),
        (RealtimePublisher, (PusherPublisher, MemoryPublisher)),
    ],
)
def test_stand_ins_match_interfaces(interface, implementations) -> None:
    expected = _public_methods(interface)
    for implementation in implementations:
        actual = _public_methods(implementation)
        for name, signature in expected.items():
            assert actual[name] == signature, f"{implementation.__name__}.{name}"
