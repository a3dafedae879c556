"""Pure functions of the Pusher protocols: signatures, ids, messages, error codes."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
from collections.abc import Mapping
from typing import Any

PROTOCOL_VERSION = 7
SUPPORTED_PROTOCOLS = range(5, 8)
# Seconds a request's auth_timestamp may differ from the server's clock.
TIMESTAMP_TOLERANCE = 600
MAX_EVENT_BYTES = 10_240
MAX_CHANNELS_PER_EVENT = 100
MAX_BATCH_EVENTS = 10
MAX_EVENT_NAME_LENGTH = 200

CHANNEL_NAME = re.compile(r"\A[-a-zA-Z0-9_=@,.;]{1,200}\Z")
SOCKET_ID = re.compile(r"\A\d+\.\d+\Z")

# WebSocket close and error codes from Pusher's protocol.
APP_NOT_FOUND = 4001
PATH_NOT_FOUND = 4005
INVALID_VERSION = 4006
UNSUPPORTED_PROTOCOL = 4007
NO_PROTOCOL = 4008
UNAUTHORIZED = 4009
PONG_NOT_RECEIVED = 4201
GENERIC_ERROR = 4300


def new_socket_id() -> str:
    # Not a secret: a subscription needs the channel signature as well.
    return f"{random.randint(1, 10**9)}.{random.randint(1, 10**9)}"  # noqa: S311


def sign(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def channel_signature_valid(
    *, key: str, secret: str, socket_id: str, channel: str, auth: str
) -> bool:
    """Check ``auth`` is ``key:HMAC-SHA256(secret, "socket_id:channel")``."""
    expected = f"{key}:{sign(secret, f'{socket_id}:{channel}')}"
    return hmac.compare_digest(expected.encode(), auth.encode())


def string_to_sign(method: str, path: str, params: Mapping[str, str]) -> str:
    """Build the text that a Pusher HTTP API request signs.

    Query parameters except ``auth_signature``, keys lower-cased, sorted by
    key and joined as ``key=value`` with ``&``, after the method and the path.
    """
    pairs = sorted(
        (key.lower(), value)
        for key, value in params.items()
        if key.lower() != "auth_signature"
    )
    query = "&".join(f"{key}={value}" for key, value in pairs)
    return f"{method}\n{path}\n{query}"


def check_request_signature(
    *,
    key: str,
    secret: str,
    method: str,
    path: str,
    params: Mapping[str, str],
    body: bytes,
    now: float,
) -> str | None:
    """Return why a signed API request is invalid, or None when it is valid."""
    if params.get("auth_key") != key:
        return "Unknown auth_key"
    if params.get("auth_version") != "1.0":
        return "auth_version must be 1.0"
    try:
        timestamp = int(params.get("auth_timestamp", ""))
    except ValueError:
        return "auth_timestamp is missing or not an integer"
    if abs(now - timestamp) > TIMESTAMP_TOLERANCE:
        return (
            f"Timestamp expired: Given timestamp ({timestamp}) not within "
            f"{TIMESTAMP_TOLERANCE}s of server time ({int(now)})"
        )
    body_md5 = params.get("body_md5")
    if body and body_md5 is None:
        return "body_md5 is required for a request with a body"
    if body_md5 is not None:
        actual = hashlib.md5(body, usedforsecurity=False).hexdigest()
        if not hmac.compare_digest(actual, body_md5):
            return "body_md5 does not match the body"
    signature = params.get("auth_signature", "")
    expected = sign(secret, string_to_sign(method, path, params))
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return (
            "Invalid signature: you should have sent the HMAC-SHA256 hex digest "
            f"of {string_to_sign(method, path, params)!r}"
        )
    return None


def message(
    event: str, data: Any, channel: str | None = None, *, encode_data: bool = True
) -> str:
    """Serialise a protocol message; ``data`` is JSON-encoded into a string."""
    body: dict[str, Any] = {"event": event}
    if channel is not None:
        body["channel"] = channel
    body["data"] = json.dumps(data) if encode_data else data
    return json.dumps(body, separators=(",", ":"))


def error_message(code: int | None, text: str) -> str:
    # pusher:error carries its data as an object, not a string.
    return message("pusher:error", {"code": code, "message": text}, encode_data=False)


def event_problem(event: Mapping[str, Any], channels: list[str]) -> str | None:
    """Return why a published event is invalid, or None."""
    name = event.get("name")
    if not isinstance(name, str) or not 0 < len(name) <= MAX_EVENT_NAME_LENGTH:
        return f"name must be a string of 1 to {MAX_EVENT_NAME_LENGTH} characters"
    if not isinstance(event.get("data"), str):
        return "data must be a string"
    if not channels or len(channels) > MAX_CHANNELS_PER_EVENT:
        return f"give 1 to {MAX_CHANNELS_PER_EVENT} channels"
    for channel in channels:
        if not isinstance(channel, str) or not CHANNEL_NAME.match(channel):
            return f"invalid channel name {channel!r}"
    socket_id = event.get("socket_id")
    if socket_id is not None and (
        not isinstance(socket_id, str) or not SOCKET_ID.match(socket_id)
    ):
        return f"invalid socket_id {socket_id!r}"
    return None
