"""Delivery faults in process: Pusher slow or returning 5xx, event size limits."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from notifications.app import create_app
from notifications.contracts import PUSH_EVENT
from notifications.pusher_server import AppCredentials, ServerThread
from notifications.pusher_server.client import PusherTestClient
from notifications.realtime import user_channel
from tests.notifications.helpers import (
    enqueue,
    enqueue_notify,
    job_attempts,
    job_statuses,
    run_jobs,
    running_worker,
    scalar,
    wait_for,
)

APP = AppCredentials(app_id="31", key="delivery-key", secret="delivery-secret")


@pytest.fixture(scope="module")
def pusher_server() -> Iterator[ServerThread]:
    with ServerThread(APP) as running:
        yield running


@pytest.fixture(scope="module")
def pusher_app(app_settings: dict[str, Any], pusher_server: ServerThread) -> Flask:
    """The app with the real Pusher client against the in-process server."""
    return create_app(
        **app_settings,
        pusher_app_id=APP.app_id,
        pusher_key=APP.key,
        pusher_secret=APP.secret,
        pusher_host="127.0.0.1",
        pusher_port=pusher_server.http_port,
        pusher_ssl=False,
        pusher_timeout=2,
        email_backend="memory",
    )


@pytest.fixture
def subscribed(
    pusher_app: Flask, pusher_server: ServerThread
) -> Iterator[tuple[PusherTestClient, uuid.UUID]]:
    user_id = uuid.uuid4()
    publisher = pusher_app.extensions["notifications.publisher"]

    def authorize(socket_id: str, channel: str) -> str:
        return publisher.authenticate(channel, socket_id)["auth"]

    with PusherTestClient(pusher_server.ws_url, APP.key, authorizer=authorize) as c:
        c.subscribe(user_channel(user_id))
        yield c, user_id


def test_event_reaches_client_through_pusher(pusher_app, subscribed) -> None:
    client, user_id = subscribed
    enqueue_notify(user_id)
    run_jobs(pusher_app)

    assert client.wait_for("notification.created").channel == user_channel(user_id)


def test_pusher_5xx_is_retried(pusher_app, pusher_server, subscribed) -> None:
    client, user_id = subscribed
    pusher_server.set_fault(503)
    enqueue_notify(user_id, recipient_email="amina@kilima.example")
    with running_worker(pusher_app):
        wait_for(lambda: job_attempts(push_job_id()) >= 1)

        # The inbox and the email do not wait for Pusher.
        assert scalar("SELECT count(*) FROM notifications.notifications") == 1
        wait_for(lambda: job_statuses("notifications.send_email") == ["finished"])
        assert job_statuses("notifications.push_event") == ["queued"]

        pusher_server.set_fault(None)
        assert client.wait_for("notification.created", timeout=10)
    assert job_statuses("notifications.push_event") == ["finished"]


def test_slow_pusher_times_out_and_retries(
    pusher_app, pusher_server, subscribed
) -> None:
    client, user_id = subscribed
    # Longer than the app's PUSHER_TIMEOUT of 2 s.
    pusher_server.set_delay(3)
    enqueue_notify(user_id)
    try:
        with running_worker(pusher_app):
            wait_for(lambda: job_attempts(push_job_id()) >= 1, timeout=10)
            pusher_server.set_delay(0)
            wait_for(lambda: job_statuses("notifications.push_event") == ["finished"])
    finally:
        pusher_server.set_delay(0)
    # The timed-out call may still have been delivered, so the client gets
    # the event once or twice: at least once is the promise.
    assert client.wait_for("notification.created", timeout=5)


def push_job_id() -> str:
    return (
        scalar("SELECT id FROM jobs.job WHERE name = 'notifications.push_event'") or ""
    )


def test_oversized_event_fails_at_once(pusher_app) -> None:
    enqueue(
        PUSH_EVENT,
        channels=["platform-alerts"],
        event="too.big",
        data='"' + "x" * 10_300 + '"',
    )
    run_jobs(pusher_app)

    assert job_statuses("notifications.push_event") == ["failed"]
