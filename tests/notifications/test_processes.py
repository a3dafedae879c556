"""End to end with real processes: the dev Pusher server, the worker, SMTP.

The Pusher server (``python -m notifications.pusher_server``) and the worker
(``flask --app notifications.app:create_app worker``) run as subprocesses,
started once for the module. SMTP is aiosmtpd on loopback in this process,
and the API (for channel authorisation) is the app served on a thread.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from edulink.auth import Role
from notifications.app import create_app
from notifications.mail_sink import SinkHandler, start_sink
from notifications.pusher_server.client import PusherTestClient, http_authorizer
from notifications.realtime import SUPPORT_CHANNEL, ticket_channel, user_channel
from tests.libs.local_server import running_server
from tests.notifications.helpers import (
    enqueue_notify,
    free_port,
    job_attempts,
    scalar,
    wait_for,
)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PUSHER = {"pusher_app_id": "77", "pusher_key": "e2e-key", "pusher_secret": "e2e-secret"}


@dataclass
class Stack:
    ws_url: str
    http_port: int
    ws_port: int
    smtp_port: int
    sink: SinkHandler
    api_url: str
    app: Flask
    log_dir: Path
    pusher: subprocess.Popen[bytes] | None = None
    smtp: Any = None

    def start_pusher(self) -> None:
        log = (self.log_dir / "pusher.log").open("ab")
        self.pusher = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "notifications.pusher_server",
                f"--ws-port={self.ws_port}",
                f"--http-port={self.http_port}",
                f"--app-id={PUSHER['pusher_app_id']}",
                f"--key={PUSHER['pusher_key']}",
                f"--secret={PUSHER['pusher_secret']}",
            ],
            cwd=REPO,
            stdout=log,
            stderr=log,
        )
        wait_for(lambda: "pusher server for app" in self._log("pusher.log"), 15)

    def stop_pusher(self) -> None:
        assert self.pusher is not None
        self.pusher.terminate()
        self.pusher.wait(timeout=10)
        # Forget the old "started" line, so the next start waits for a new one.
        (self.log_dir / "pusher.log").write_bytes(b"")

    def start_smtp(self) -> None:
        self.smtp = start_sink(self.sink, port=self.smtp_port)

    def stop_smtp(self) -> None:
        self.smtp.stop()

    def client(self, user) -> PusherTestClient:
        authorizer = http_authorizer(
            f"{self.api_url}/api/v1/realtime/auth", user.headers
        )
        return PusherTestClient(
            self.ws_url, PUSHER["pusher_key"], authorizer=authorizer
        )

    def _log(self, name: str) -> str:
        return (self.log_dir / name).read_text(errors="replace")


@pytest.fixture(scope="module")
def stack(
    app_settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    log_dir = tmp_path_factory.mktemp("e2e")
    ws_port, http_port, smtp_port = free_port(), free_port(), free_port()
    settings = {
        **app_settings,
        **PUSHER,
        "pusher_host": "127.0.0.1",
        "pusher_port": http_port,
        "pusher_ssl": False,
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "smtp_timeout": 2,
    }
    app = create_app(**settings)
    with running_server(app) as api_url:
        stack = Stack(
            ws_url=f"ws://127.0.0.1:{ws_port}",
            http_port=http_port,
            ws_port=ws_port,
            smtp_port=smtp_port,
            sink=SinkHandler(),
            api_url=api_url,
            app=app,
            log_dir=log_dir,
        )
        stack.start_pusher()
        stack.start_smtp()
        worker = _start_worker(settings, log_dir)
        try:
            yield stack
        finally:
            worker.terminate()
            worker.wait(timeout=15)
            if stack.pusher is not None and stack.pusher.poll() is None:
                stack.stop_pusher()
            stack.stop_smtp()


def _start_worker(settings: dict[str, Any], log_dir: Path) -> subprocess.Popen[bytes]:
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        **{name.upper(): str(value) for name, value in settings.items()},
    }
    log_path = log_dir / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "flask",
                "--app",
                "notifications.app:create_app",
                "worker",
                "--poll-interval=0.2",
                "--heartbeat-timeout=2",
                "--concurrency=4",
            ],
            cwd=REPO,
            env=environment,
            stdout=log,
            stderr=log,
        )
    wait_for(lambda: "started on queue" in log_path.read_text(), 20)
    return worker


def test_status_change_reaches_websocket_client(stack, person) -> None:
    student = person(Role.student)
    application_id = uuid.uuid4()
    with stack.client(student) as client:
        answer = client.subscribe(user_channel(student.user_id))
        assert answer.event == "pusher_internal:subscription_succeeded"
        enqueue_notify(student.user_id, entity_id=application_id)

        event = client.wait_for("notification.created", timeout=10)
    assert event.channel == user_channel(student.user_id)
    assert event.data["notification"]["entity_id"] == str(application_id)
    assert ["applications", str(application_id)] in event.data["refresh"]


def test_other_users_channel_is_refused(stack, person) -> None:
    student = person(Role.student)
    victim = person(Role.student)
    channel = user_channel(victim.user_id)
    with stack.client(student) as client:
        with pytest.raises(PermissionError, match="403"):
            client.subscribe(channel)
        # A made-up signature fails at the Pusher server too.
        answer = client.subscribe(channel, auth=f"{PUSHER['pusher_key']}:{'0' * 64}")
        assert answer.event == "pusher:subscription_error"
        enqueue_notify(victim.user_id)
        with pytest.raises(TimeoutError):
            client.wait_for("notification.created", timeout=1.5)


def test_event_arrives_after_pusher_restarts(stack, person) -> None:
    student = person(Role.student)
    stack.stop_pusher()
    enqueue_notify(student.user_id, job_id="e2e-outage")
    notification_id = wait_for(
        lambda: scalar(
            "SELECT id FROM notifications.notifications WHERE recipient_user_id = :u",
            u=student.user_id,
        )
    )
    push_job = f"notification:{notification_id}:push"
    # The inbox has it while Pusher is down. After three failed attempts the
    # next retry is 4 s away, time enough to restart and subscribe first.
    wait_for(lambda: job_attempts(push_job) >= 3, timeout=15)

    stack.start_pusher()
    with stack.client(student) as client:
        client.subscribe(user_channel(student.user_id))
        event = client.wait_for("notification.created", timeout=15)
    assert event.data["notification"]["id"] == str(notification_id)


def test_email_arrives_after_smtp_recovers(stack, person) -> None:
    student = person(Role.student)
    address = f"{student.user_id}@kilima.example"
    stack.stop_smtp()
    enqueue_notify(student.user_id, recipient_email=address)
    notification_id = wait_for(
        lambda: scalar(
            "SELECT id FROM notifications.notifications WHERE recipient_user_id = :u",
            u=student.user_id,
        )
    )
    wait_for(lambda: job_attempts(f"notification:{notification_id}:email") >= 1)
    assert stack.sink.sent_to(address) == []

    stack.start_smtp()
    wait_for(lambda: stack.sink.sent_to(address), timeout=20)


def test_duplicate_job_makes_one_notification(stack, person) -> None:
    student = person(Role.student)
    with stack.client(student) as client:
        client.subscribe(user_channel(student.user_id))
        for _ in range(2):
            enqueue_notify(student.user_id, idempotency_key=f"dup:{student.user_id}")
        client.wait_for("notification.created", timeout=10)
        wait_for(
            lambda: (
                scalar(
                    "SELECT count(*) FROM jobs.job WHERE name = 'notifications.notify' "
                    "AND status = 'finished' AND payload->>'recipient_user_id' = :u",
                    u=str(student.user_id),
                )
                == 2
            )
        )
        # Give a second event, if there were one, time to arrive.
        time.sleep(1)
        assert len(client.events("notification.created")) == 1
    count = scalar(
        "SELECT count(*) FROM notifications.notifications WHERE recipient_user_id = :u",
        u=student.user_id,
    )
    assert count == 1


def test_internal_notes_never_reach_owner(stack, person) -> None:
    owner = person(Role.student, email="owner@kilima.example", name="Owner")
    staff = person(Role.support_staff, name="Otieno")
    api = stack.app.test_client()
    ticket = api.post(
        "/api/v1/support/tickets",
        json={"subject": "Help", "category": "other", "message": "Hello"},
        headers=owner.headers,
    ).get_json()
    note = "Internal: owner flagged for review"

    with stack.client(owner) as owner_client, stack.client(staff) as staff_client:
        owner_client.subscribe(ticket_channel(ticket["id"]))
        owner_client.subscribe(user_channel(owner.user_id))
        staff_client.subscribe(SUPPORT_CHANNEL)
        url = f"/api/v1/support/tickets/{ticket['id']}/messages"
        api.post(url, json={"body": note, "internal": True}, headers=staff.headers)
        staff_client.wait_for(
            lambda m: m.event == "ticket.message_created" and m.data["internal"],
            timeout=10,
        )
        api.post(url, json={"body": "We are on it."}, headers=staff.headers)
        owner_client.wait_for("notification.created", timeout=10)
        owner_client.wait_for("ticket.message_created", timeout=10)

        received = [
            m for m in owner_client.events() if m.event == "ticket.message_created"
        ]
    assert len(received) == 1
    assert received[0].data["internal"] is False
    assert all(note not in str(m.data) for m in owner_client.events())
    wait_for(lambda: stack.sink.sent_to("owner@kilima.example"), timeout=10)
    for email in stack.sink.messages:
        assert note not in email.as_string()
