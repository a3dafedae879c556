"""Real-time delivery: channel names, who may subscribe, and the Pusher client.

Events go through a :class:`RealtimePublisher`: :class:`PusherPublisher` calls
a Pusher-compatible HTTP API with the ``pusher`` library, and
:class:`MemoryPublisher` keeps events in a list. ``REALTIME_BACKEND`` picks
one at start.

Every event's data is a JSON object of at most :data:`MAX_EVENT_BYTES` bytes,
carrying resource ids and a ``refresh`` list of client query keys, so the web
app refetches exactly what changed instead of trusting the event's content.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pusher
import pusher.errors

from notifications.settings import NotificationsSettings

log = logging.getLogger(__name__)

# Pusher rejects event data above 10 KB (10,240 bytes) and triggers naming
# more than 100 channels.
MAX_EVENT_BYTES = 10_240
MAX_CHANNELS_PER_TRIGGER = 100

USER_CHANNEL_PREFIX = "private-user-"
ORG_CHANNEL_PREFIX = "private-org-"
TICKET_CHANNEL_PREFIX = "private-ticket-"
# Support staff's channel: new tickets, owners' replies and internal notes.
SUPPORT_CHANNEL = "private-support"
# A public channel: every client may subscribe without authorisation.
ALERTS_CHANNEL = "platform-alerts"

SOCKET_ID = re.compile(r"\A\d{1,20}\.\d{1,20}\Z")
CHANNEL_NAME = re.compile(r"\A[-a-zA-Z0-9_=@,.;]{1,164}\Z")


class EventTooLarge(ValueError):
    """An event's data is larger than Pusher accepts."""

    def __init__(self, size: int) -> None:
        super().__init__(
            f"event data is {size} bytes, above the limit of {MAX_EVENT_BYTES}"
        )
        self.size = size


class RealtimeError(Exception):
    """Publishing failed in a way that a retry may fix (network, 5xx, timeout)."""


class RealtimeRejected(Exception):
    """The Pusher API rejected the event as invalid; a retry cannot help."""


def user_channel(user_id: uuid.UUID | str) -> str:
    return f"{USER_CHANNEL_PREFIX}{user_id}"


def org_channel(org_id: uuid.UUID | str) -> str:
    return f"{ORG_CHANNEL_PREFIX}{org_id}"


def ticket_channel(ticket_id: uuid.UUID | str) -> str:
    return f"{TICKET_CHANNEL_PREFIX}{ticket_id}"


def encode_event_data(data: Mapping[str, Any]) -> str:
    """Serialise event data as compact JSON, or raise EventTooLarge."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)
    size = len(text.encode("utf-8"))
    if size > MAX_EVENT_BYTES:
        raise EventTooLarge(size)
    return text


def channel_id(channel: str, prefix: str) -> uuid.UUID | None:
    """Return the UUID after ``prefix`` in ``channel``, or None if it is not one."""
    if not channel.startswith(prefix):
        return None
    try:
        return uuid.UUID(channel[len(prefix) :])
    except ValueError:
        return None


def sign_subscription(secret: str, socket_id: str, channel: str) -> str:
    """Return the HMAC-SHA256 hex digest Pusher expects for a private channel."""
    message = f"{socket_id}:{channel}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class RealtimePublisher(Protocol):
    """Sends events to channels and signs channel subscriptions."""

    key: str

    def trigger(
        self,
        channels: Sequence[str],
        event: str,
        data: str,
        *,
        socket_id: str | None = None,
    ) -> None:
        """Send ``data`` (JSON text) as ``event`` to ``channels``.

        Raises RealtimeError when a retry may succeed and RealtimeRejected when
        it cannot. ``socket_id`` names a connection that must not receive it.
        """
        ...

    def authenticate(self, channel: str, socket_id: str) -> dict[str, str]:
        """Return the ``{"auth": "key:signature"}`` body for a subscription."""
        ...


def _chunks(items: Sequence[str], size: int) -> list[Sequence[str]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


class PusherPublisher:
    """Publishes through the ``pusher`` library to Pusher or a compatible server."""

    def __init__(self, settings: NotificationsSettings) -> None:
        assert settings.pusher_app_id
        assert settings.pusher_key
        assert settings.pusher_secret is not None
        self.key = settings.pusher_key
        self._client = pusher.Pusher(
            app_id=settings.pusher_app_id,
            key=settings.pusher_key,
            secret=settings.pusher_secret.get_secret_value(),
            ssl=settings.pusher_ssl,
            host=settings.pusher_host,
            port=settings.pusher_port,
            cluster=settings.pusher_cluster,
            timeout=settings.pusher_timeout,
        )
        # Proxy variables in the environment must not reroute API calls.
        self._client._pusher_client.http.session.trust_env = False
        self.base_url = (
            f"{self._client._pusher_client.scheme}://"
            f"{self._client._pusher_client.host}:{self._client._pusher_client.port}"
        )

    def trigger(
        self,
        channels: Sequence[str],
        event: str,
        data: str,
        *,
        socket_id: str | None = None,
    ) -> None:
        for chunk in _chunks(channels, MAX_CHANNELS_PER_TRIGGER):
            try:
                self._client.trigger(list(chunk), event, data, socket_id)
            except pusher.errors.PusherBadRequest as error:
                raise RealtimeRejected(
                    f"{self.base_url} rejected {event}: {error}"
                ) from error
            except (pusher.errors.PusherError, OSError) as error:
                # requests' exceptions (refused, timed out) derive from OSError.
                raise RealtimeError(
                    f"publishing {event} to {self.base_url} failed: {error}"
                ) from error

    def authenticate(self, channel: str, socket_id: str) -> dict[str, str]:
        return self._client.authenticate(channel=channel, socket_id=socket_id)


@dataclass(frozen=True)
class PublishedEvent:
    channels: tuple[str, ...]
    event: str
    data: dict[str, Any]
    socket_id: str | None


@dataclass
class MemoryPublisher:
    """Keeps events in :attr:`events` instead of sending them. Thread-safe."""

    key: str = "memory-key"
    secret: str = "memory-secret"  # noqa: S105 - a stand-in's fixed signing key
    events: list[PublishedEvent] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def trigger(
        self,
        channels: Sequence[str],
        event: str,
        data: str,
        *,
        socket_id: str | None = None,
    ) -> None:
        published = PublishedEvent(tuple(channels), event, json.loads(data), socket_id)
        with self._lock:
            self.events.append(published)

    def authenticate(self, channel: str, socket_id: str) -> dict[str, str]:
        signature = sign_subscription(self.secret, socket_id, channel)
        return {"auth": f"{self.key}:{signature}"}

    def on_channel(self, channel: str) -> list[PublishedEvent]:
        with self._lock:
            return [event for event in self.events if channel in event.channels]

    def clear(self) -> None:
        with self._lock:
            self.events.clear()


def publisher_from_settings(settings: NotificationsSettings) -> RealtimePublisher:
    if settings.realtime_backend == "memory":
        return MemoryPublisher()
    return PusherPublisher(settings)
