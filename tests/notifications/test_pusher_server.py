"""The development Pusher server: HTTP API signatures and the WebSocket protocol."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pusher
import pusher.errors
import pytest
import requests
from websockets.sync.client import connect

from notifications.pusher_server import AppCredentials, ServerThread
from notifications.pusher_server.client import PusherTestClient
from notifications.pusher_server.protocol import sign, string_to_sign
from notifications.realtime import sign_subscription

APP = AppCredentials(app_id="4242", key="dev-key", secret="dev-secret")


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(APP) as running:
        yield running


def api(server: ServerThread, secret: str = APP.secret) -> pusher.Pusher:
    client = pusher.Pusher(
        app_id=APP.app_id,
        key=APP.key,
        secret=secret,
        host="127.0.0.1",
        port=server.http_port,
        ssl=False,
    )
    client._pusher_client.http.session.trust_env = False
    return client


def private_auth(socket_id: str, channel: str, secret: str = APP.secret) -> str:
    return f"{APP.key}:{sign_subscription(secret, socket_id, channel)}"


@pytest.fixture
def client(server: ServerThread) -> Iterator[PusherTestClient]:
    with PusherTestClient(server.ws_url, APP.key) as connected:
        yield connected


def test_connection_established_has_socket_id(client) -> None:
    established = client.events("pusher:connection_established")[0]
    assert established.data["activity_timeout"] == 120
    assert client.socket_id
    assert "." in client.socket_id


def test_private_subscription_with_signature(client) -> None:
    channel = "private-user-7"
    answer = client.subscribe(channel, auth=private_auth(client.socket_id, channel))
    assert answer.event == "pusher_internal:subscription_succeeded"


def test_bad_signature_is_refused(client, server) -> None:
    channel = "private-user-8"
    answer = client.subscribe(
        channel, auth=private_auth(client.socket_id, channel, secret="guess")
    )
    assert answer.event == "pusher:subscription_error"
    error = client.wait_for("pusher:error")
    assert error.data["code"] == 4009
    assert server.subscription_count(channel) == 0


def test_private_subscription_needs_auth(client) -> None:
    answer = client.subscribe("private-user-9")
    assert answer.event == "pusher:subscription_error"


def test_signature_for_other_socket_is_refused(client) -> None:
    channel = "private-user-10"
    answer = client.subscribe(channel, auth=private_auth("1.1", channel))
    assert answer.event == "pusher:subscription_error"


def test_event_reaches_subscribers_but_excluded(server) -> None:
    channel = "private-ticket-1"
    with (
        PusherTestClient(server.ws_url, APP.key) as actor,
        PusherTestClient(server.ws_url, APP.key) as other,
    ):
        for connected in (actor, other):
            connected.subscribe(
                channel, auth=private_auth(connected.socket_id, channel)
            )
        api(server).trigger(
            [channel], "ticket.message_created", {"id": 1}, actor.socket_id
        )

        received = other.wait_for("ticket.message_created", channel=channel)
        assert received.data == {"id": 1}
        with pytest.raises(TimeoutError):
            actor.wait_for("ticket.message_created", timeout=0.3)


def test_public_channel_and_batch_events(client, server) -> None:
    client.subscribe("platform-alerts")
    api(server).trigger_batch(
        [
            {"channel": "platform-alerts", "name": "alert.created", "data": {"n": 1}},
            {"channel": "platform-alerts", "name": "alert.ended", "data": {"n": 2}},
        ]
    )
    assert client.wait_for("alert.ended").data == {"n": 2}
    assert client.wait_for("alert.created").data == {"n": 1}


def test_ping_gets_pong(client) -> None:
    client.send("pusher:ping", {})
    assert client.wait_for("pusher:pong").event == "pusher:pong"


def test_client_events_are_rejected(client) -> None:
    client.send("client-typing", {}, channel="platform-alerts")
    assert client.wait_for("pusher:error").data["code"] == 4300


def test_unknown_app_key_is_closed_4001(server) -> None:
    wrong = PusherTestClient(server.ws_url, "no-such-key")
    with pytest.raises(ConnectionError):
        wrong.connect()
    assert wrong.events("pusher:error")[0].data["code"] == 4001
    assert wrong.close_code == 4001


def test_missing_protocol_is_closed_4008(server) -> None:
    url = f"{server.ws_url}/app/{APP.key}"
    with connect(url, proxy=None, legacy=False) as websocket:
        websocket.recv(timeout=5)
        with pytest.raises(Exception):  # noqa: B017, PT011 - the close is the point
            websocket.recv(timeout=5)
        assert websocket.close_code == 4008


def test_wrong_secret_is_401(server) -> None:
    with pytest.raises(pusher.errors.PusherBadAuth):
        api(server, secret="wrong").trigger(["platform-alerts"], "e", {})


def test_tampered_body_is_401(server) -> None:
    path = f"/apps/{APP.app_id}/events"
    params = {
        "auth_key": APP.key,
        "auth_timestamp": str(int(time.time())),
        "auth_version": "1.0",
        "body_md5": "0" * 32,
    }
    params["auth_signature"] = sign(APP.secret, string_to_sign("POST", path, params))
    response = requests.post(
        f"http://127.0.0.1:{server.http_port}{path}",
        params=params,
        data=b'{"name":"e","channels":["a"],"data":"{}"}',
        timeout=5,
    )
    assert response.status_code == 401
    assert "body_md5" in response.text


def test_old_timestamp_is_401(server) -> None:
    path = f"/apps/{APP.app_id}/channels"
    params = {
        "auth_key": APP.key,
        "auth_timestamp": str(int(time.time()) - 3600),
        "auth_version": "1.0",
    }
    params["auth_signature"] = sign(APP.secret, string_to_sign("GET", path, params))
    response = requests.get(
        f"http://127.0.0.1:{server.http_port}{path}", params=params, timeout=5
    )
    assert response.status_code == 401
    assert "Timestamp expired" in response.text


def test_oversized_event_is_413(server) -> None:
    with pytest.raises(pusher.errors.PusherBadStatus, match="413"):
        api(server).trigger(["platform-alerts"], "big", "x" * 10_241)


def test_channel_info_counts_subscribers(client, server) -> None:
    client.subscribe("platform-alerts")
    info = api(server).channel_info("platform-alerts", ["subscription_count"])
    assert info["subscription_count"] >= 1


def test_fault_status_answers_every_call(server) -> None:
    server.set_fault(503)
    try:
        with pytest.raises(pusher.errors.PusherBadStatus, match="503"):
            api(server).trigger(["platform-alerts"], "e", {})
    finally:
        server.set_fault(None)
