"""A local SMTP sink that keeps every message: ``python -m notifications.mail_sink``.

``make up`` runs it on 127.0.0.1:1025 and the notifications worker sends
there, so each email lands as an ``.eml`` file under ``var/mail/`` to open
with any mail client. Tests use :class:`SinkHandler` with aiosmtpd's
``Controller`` as a real SMTP server on loopback.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import ipaddress
import logging
import signal
import sys
import threading
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from edulink.logs import configure_logging

log = logging.getLogger(__name__)


class SinkHandler:
    """aiosmtpd handler: accepts every message, keeps it, optionally as a file."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        raw: bytes = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.messages.append(message)
        if self.directory is not None:
            name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.eml"
            (self.directory / name).write_bytes(raw)
            log.info("kept email to %s as %s", ", ".join(envelope.rcpt_tos), name)
        return "250 Message accepted for delivery"

    def sent_to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if m["To"] == address]


def start_sink(
    handler: SinkHandler, *, host: str = "127.0.0.1", port: int = 1025
) -> Controller:
    """Start an SMTP server for ``handler`` in a background thread; stop() ends it."""
    controller = Controller(handler, hostname=host, port=port, ready_timeout=10)
    controller.start()
    return controller


def _loopback(host: str) -> str:
    if host == "localhost" or ipaddress.ip_address(host).is_loopback:
        return host
    raise argparse.ArgumentTypeError(f"{host} is not a loopback address")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", type=_loopback, default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument(
        "--dir", type=Path, default=Path("var/mail"), help="Where .eml files go"
    )
    args = parser.parse_args(argv)
    configure_logging("mail-sink")

    controller = start_sink(SinkHandler(args.dir), host=args.host, port=args.port)
    log.info(
        "SMTP sink on %s:%d, keeping messages in %s", args.host, args.port, args.dir
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    controller.stop()
    log.info("SMTP sink stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
