"""A small synchronous Pusher client for tests and benchmarks.

It connects to a Pusher-protocol WebSocket (this package's server, or any
compatible one on loopback), subscribes to channels, and collects every
message in a background thread::

    with PusherTestClient("ws://127.0.0.1:6001", "key") as client:
        client.subscribe("private-user-1", auth=sign_channel(...))
        event = client.wait_for("notification.created", timeout=5)
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

# Signs a subscription: (socket_id, channel) -> the "key:signature" auth value.
Authorizer = Callable[[str, str], str]


@dataclass(frozen=True)
class Message:
    """One protocol message, with ``data`` decoded from its JSON string."""

    event: str
    channel: str | None
    data: Any
    received_at: float


class PusherTestClient:
    """A pusher-js stand-in: connect, subscribe, wait for events."""

    def __init__(self, ws_url: str, key: str, *, authorizer: Authorizer | None = None):
        self.url = f"{ws_url.rstrip('/')}/app/{key}?protocol=7&client=edulink-test"
        self.authorizer = authorizer
        self.socket_id: str | None = None
        self.messages: list[Message] = []
        self._inbox: queue.Queue[Message] = queue.Queue()
        self._lock = threading.RLock()
        self._websocket: ClientConnection | None = None
        self._reader: threading.Thread | None = None
        self.close_code: int | None = None

    def __enter__(self) -> PusherTestClient:
        self.connect()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def connect(self, timeout: float = 5.0) -> str:
        """Open the connection and return the socket id the server assigned."""
        # proxy=None: proxy variables in the environment must not reroute tests.
        self._websocket = connect(
            self.url, open_timeout=timeout, proxy=None, legacy=True
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        established = self.wait_for("pusher:connection_established", timeout=timeout)
        self.socket_id = established.data["socket_id"]
        return self.socket_id

    def close(self) -> None:
        if self._websocket is not None:
            self._websocket.close()
        if self._reader is not None:
            self._reader.join(timeout=5)

    def send(self, event: str, data: Any, channel: str | None = None) -> None:
        assert self._websocket is not None, "connect first"
        body: dict[str, Any] = {"event": event, "data": data}
        if channel is not None:
            body["channel"] = channel
        self._websocket.send(json.dumps(body))

    def subscribe(
        self, channel: str, *, auth: str | None = None, timeout: float = 5.0
    ) -> Message:
        """Subscribe and return the server's reply: succeeded, or an error.

        Private channels are signed with ``auth``, else with the authorizer.
        """
        assert self.socket_id is not None, "connect first"
        if channel.startswith("private-") and auth is None and self.authorizer:
            auth = self.authorizer(self.socket_id, channel)
        data: dict[str, Any] = {"channel": channel}
        if auth is not None:
            data["auth"] = auth
        self.send("pusher:subscribe", data)
        return self.wait_for(
            lambda message: (
                message.channel == channel
                and message.event
                in (
                    "pusher_internal:subscription_succeeded",
                    "pusher:subscription_error",
                )
            ),
            timeout=timeout,
        )

    def wait_for(
        self,
        match: str | Callable[[Message], bool],
        *,
        channel: str | None = None,
        timeout: float = 5.0,
    ) -> Message:
        """Return the first message, received or still to come, that matches.

        ``match`` is an event name or a predicate. Raises TimeoutError, or
        ConnectionError once the connection is closed.
        """
        if isinstance(match, str):
            name = match

            def predicate(message: Message) -> bool:
                return message.event == name and (
                    channel is None or message.channel == channel
                )
        else:
            predicate = match

        with self._lock:
            for message in self.messages:
                if predicate(message):
                    return message
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching message within {timeout} s")
            try:
                message = self._inbox.get(timeout=min(remaining, 0.1))
            except queue.Empty:
                if self._reader is not None and not self._reader.is_alive():
                    raise ConnectionError(
                        f"the server closed the connection with code {self.close_code}"
                    ) from None
                continue
            if predicate(message):
                return message

    def events(self, name: str | None = None) -> list[Message]:
        """Return the messages received so far, optionally of one event name."""
        with self._lock:
            return [m for m in self.messages if name is None or m.event == name]

    def _read(self) -> None:
        assert self._websocket is not None
        try:
            for raw in self._websocket:
                message = _decode(raw)
                with self._lock:
                    self.messages.append(message)
                self._inbox.put(message)
        except ConnectionClosed:
            pass
        finally:
            if self._websocket.close_code is not None:
                self.close_code = self._websocket.close_code


def _decode(raw: str | bytes) -> Message:
    body = json.loads(raw)
    data = body.get("data")
    if isinstance(data, str):
        with contextlib.suppress(ValueError):
            data = json.loads(data)
    return Message(body.get("event", ""), body.get("channel"), data, time.monotonic())


def http_authorizer(auth_url: str, headers: dict[str, str]) -> Authorizer:
    """Build an authorizer that requests signatures from /api/v1/realtime/auth.

    It posts the form fields pusher-js sends and raises PermissionError with
    the status when the endpoint rejects the request.
    """
    session = requests.Session()
    session.trust_env = False

    def authorize(socket_id: str, channel: str) -> str:
        response = session.post(
            auth_url,
            data={"socket_id": socket_id, "channel_name": channel},
            headers=headers,
            timeout=5,
        )
        if response.status_code != 200:
            raise PermissionError(
                f"{auth_url} rejected {channel}: {response.status_code}"
            )
        return response.json()["auth"]

    return authorize
