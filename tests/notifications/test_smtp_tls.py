"""SMTP over STARTTLS and implicit TLS, against aiosmtpd with a test certificate.

The sender verifies the server certificate with the default trust store,
which the test points at its own certificate through ``SSL_CERT_FILE``.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from notifications.mail import EmailRejected, SmtpSender
from notifications.mail_sink import SinkHandler
from tests.notifications.helpers import free_port
from tests.notifications.test_mail import message_to, smtp_settings


def write_certificate(directory: Path) -> tuple[Path, Path]:
    """Write a self-signed certificate for 127.0.0.1 and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def server_context(tmp_path, monkeypatch) -> ssl.SSLContext:
    cert_path, key_path = write_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context


def send_through(controller_options: dict, security: str) -> SinkHandler:
    handler = SinkHandler()
    port = free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, **controller_options
    )
    controller.start()
    try:
        settings = smtp_settings(port).model_copy(update={"smtp_security": security})
        SmtpSender(settings).send(message_to("tls@kilima.example"))
    finally:
        controller.stop()
    return handler


def test_starttls_delivers(server_context) -> None:
    handler = send_through(
        {"tls_context": server_context, "require_starttls": True}, "starttls"
    )
    assert len(handler.sent_to("tls@kilima.example")) == 1


def test_plain_to_starttls_server_is_rejected(server_context) -> None:
    # 530 "Must issue a STARTTLS command first" is a 5xx: the job fails at
    # once, and `flask jobs requeue` sends it again once SMTP_SECURITY is set.
    with pytest.raises(EmailRejected, match="530"):
        send_through({"tls_context": server_context, "require_starttls": True}, "none")


def test_implicit_tls_delivers(server_context) -> None:
    handler = send_through({"ssl_context": server_context}, "tls")
    assert len(handler.sent_to("tls@kilima.example")) == 1
