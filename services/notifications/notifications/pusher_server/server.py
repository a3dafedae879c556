"""The development Pusher server: one asyncio loop, a WebSocket and an HTTP port."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

from notifications.pusher_server import protocol

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 16_384
MAX_BODY_BYTES = 1_048_576
MAX_SOCKET_MESSAGE_BYTES = 65_536


@dataclass(frozen=True)
class AppCredentials:
    """The one app this server hosts. Pusher app ids are digits."""

    app_id: str
    key: str
    secret: str


@dataclass(eq=False)
class Subscriber:
    socket_id: str
    websocket: ServerConnection
    channels: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def keep_alive(self) -> bool:
        return self.headers.get("connection", "").lower() != "close"


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: str
    content_type: str = "application/json"

    def encode(self, keep_alive: bool) -> bytes:
        payload = self.body.encode()
        lines = [
            f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Unknown')}",
            f"Content-Type: {self.content_type}",
            f"Content-Length: {len(payload)}",
            f"Connection: {'keep-alive' if keep_alive else 'close'}",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class BadHttpRequest(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


def _text(status: int, text: str) -> HttpResponse:
    return HttpResponse(status, text + "\n", "text/plain; charset=utf-8")


def _json(body: Any) -> HttpResponse:
    return HttpResponse(200, json.dumps(body, separators=(",", ":")))


class PusherServer:
    """Hosts one app: WebSocket clients on ``ws_port``, the REST API on ``http_port``.

    Port 0 picks a free port; the bound ports are in :attr:`ws_port` and
    :attr:`http_port` once :meth:`start` returns. While :attr:`fault_status`
    is set, every API call under ``/apps/`` returns that status, and
    :attr:`fault_delay` delays each response by that many seconds, which
    lets tests play a failing or slow Pusher.
    """

    def __init__(
        self,
        app: AppCredentials,
        *,
        host: str = "127.0.0.1",
        ws_port: int = 6001,
        http_port: int = 6002,
        activity_timeout: float = 120.0,
        pong_timeout: float = 30.0,
    ) -> None:
        self.app = app
        self.host = host
        self.ws_port = ws_port
        self.http_port = http_port
        self.activity_timeout = activity_timeout
        self.pong_timeout = pong_timeout
        self.fault_status: int | None = None
        self.fault_delay = 0.0
        self.events_published = 0
        self._channels: dict[str, dict[str, Subscriber]] = {}
        self._ws_server: Any = None
        self._http_server: asyncio.Server | None = None
        self._http_connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def start(self) -> None:
        self._ws_server = await serve(
            self._handle_socket,
            self.host,
            self.ws_port,
            max_size=MAX_SOCKET_MESSAGE_BYTES,
            # Pusher's own ping and pong keep connections alive.
            ping_interval=None,
        )
        self.ws_port = self._ws_server.sockets[0].getsockname()[1]
        self._http_server = await asyncio.start_server(
            self._handle_http, self.host, self.http_port, limit=MAX_HEADER_BYTES
        )
        self.http_port = self._http_server.sockets[0].getsockname()[1]
        log.info(
            "pusher server for app %s: WebSocket ws://%s:%d/app/%s, HTTP API "
            "http://%s:%d",
            self.app.app_id,
            self.host,
            self.ws_port,
            self.app.key,
            self.host,
            self.http_port,
        )

    async def stop(self) -> None:
        if self._http_server is not None:
            self._http_server.close()
            # Keep-alive connections outlive the listening socket; end them too.
            # Closing the transport ends their reads with end of stream.
            for writer in list(self._http_connections.values()):
                writer.close()
            await asyncio.gather(*self._http_connections, return_exceptions=True)
            await self._http_server.wait_closed()
        if self._ws_server is not None:
            self._ws_server.close()
            await self._ws_server.wait_closed()
        log.info("pusher server stopped")

    # Channels

    def subscription_count(self, channel: str) -> int:
        return len(self._channels.get(channel, {}))

    def publish(
        self, channels: list[str], name: str, data: str, exclude: str | None = None
    ) -> int:
        """Send an event to each channel's subscribers but ``exclude``.

        Returns the number of deliveries.
        """
        delivered = 0
        for channel in channels:
            sockets = [
                subscriber.websocket
                for socket_id, subscriber in self._channels.get(channel, {}).items()
                if socket_id != exclude
            ]
            text = protocol.message(name, data, channel, encode_data=False)
            broadcast(sockets, text)
            delivered += len(sockets)
        self.events_published += 1
        log.debug("event %s to %s: %d deliveries", name, channels, delivered)
        return delivered

    def _add(self, subscriber: Subscriber, channel: str) -> None:
        self._channels.setdefault(channel, {})[subscriber.socket_id] = subscriber
        subscriber.channels.add(channel)

    def _remove(self, subscriber: Subscriber, channel: str) -> None:
        members = self._channels.get(channel)
        if members is not None:
            members.pop(subscriber.socket_id, None)
            if not members:
                del self._channels[channel]
        subscriber.channels.discard(channel)

    # WebSocket protocol

    def _check_path(self, path: str) -> tuple[int, str] | None:
        parts = urllib.parse.urlsplit(path)
        segments = parts.path.strip("/").split("/")
        if len(segments) != 2 or segments[0] != "app":
            return protocol.PATH_NOT_FOUND, f"Path not found: {parts.path}"
        if segments[1] != self.app.key:
            return protocol.APP_NOT_FOUND, f"App key {segments[1]} does not exist"
        query = dict(urllib.parse.parse_qsl(parts.query))
        if "protocol" not in query:
            return protocol.NO_PROTOCOL, "No protocol version supplied"
        try:
            version = int(query["protocol"])
        except ValueError:
            return protocol.INVALID_VERSION, "Invalid version string format"
        if version not in protocol.SUPPORTED_PROTOCOLS:
            return protocol.UNSUPPORTED_PROTOCOL, f"Unsupported protocol {version}"
        return None

    async def _handle_socket(self, websocket: ServerConnection) -> None:
        assert websocket.request is not None
        problem = self._check_path(websocket.request.path)
        if problem is not None:
            code, text = problem
            await websocket.send(protocol.error_message(code, text))
            await websocket.close(code, text)
            return

        subscriber = Subscriber(protocol.new_socket_id(), websocket)
        await websocket.send(
            protocol.message(
                "pusher:connection_established",
                {
                    "socket_id": subscriber.socket_id,
                    "activity_timeout": round(self.activity_timeout),
                },
            )
        )
        try:
            await self._receive(subscriber)
        except ConnectionClosed:
            pass
        finally:
            for channel in list(subscriber.channels):
                self._remove(subscriber, channel)

    async def _receive(self, subscriber: Subscriber) -> None:
        websocket = subscriber.websocket
        while True:
            try:
                raw = await asyncio.wait_for(
                    websocket.recv(), timeout=self.activity_timeout
                )
            except TimeoutError:
                await websocket.send(protocol.message("pusher:ping", {}))
                try:
                    raw = await asyncio.wait_for(
                        websocket.recv(), timeout=self.pong_timeout
                    )
                except TimeoutError:
                    await websocket.close(
                        protocol.PONG_NOT_RECEIVED, "Pong reply not received"
                    )
                    return
            await self._handle_message(subscriber, raw)

    async def _handle_message(self, subscriber: Subscriber, raw: str | bytes) -> None:
        websocket = subscriber.websocket
        try:
            incoming = json.loads(raw)
        except ValueError:
            incoming = None
        if not isinstance(incoming, dict) or not isinstance(incoming.get("event"), str):
            await websocket.send(
                protocol.error_message(
                    protocol.GENERIC_ERROR,
                    "A message must be a JSON object with an event name",
                )
            )
            return

        event = incoming["event"]
        data = incoming.get("data")
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                data = None
        if event == "pusher:ping":
            await websocket.send(protocol.message("pusher:pong", {}))
        elif event == "pusher:subscribe":
            await self._subscribe(subscriber, data if isinstance(data, dict) else {})
        elif event == "pusher:unsubscribe" and isinstance(data, dict):
            self._remove(subscriber, str(data.get("channel")))
        elif event.startswith("client-"):
            await websocket.send(
                protocol.error_message(
                    protocol.GENERIC_ERROR, "Client events are disabled on this server"
                )
            )

    async def _subscribe(self, subscriber: Subscriber, data: Mapping[str, Any]) -> None:
        websocket = subscriber.websocket
        channel = data.get("channel")
        if not isinstance(channel, str) or not protocol.CHANNEL_NAME.match(channel):
            await websocket.send(
                protocol.error_message(
                    protocol.GENERIC_ERROR, f"Invalid channel name {channel!r}"
                )
            )
            return
        if channel.startswith(("presence-", "private-encrypted-")):
            await websocket.send(
                protocol.error_message(
                    protocol.GENERIC_ERROR,
                    f"{channel}: presence and encrypted channels are not supported "
                    "by this development server",
                )
            )
            return
        if channel.startswith("private-") and not self._authorized(
            subscriber, channel, data.get("auth")
        ):
            text = (
                f"Invalid signature for {channel}: expected the HMAC-SHA256 hex "
                f"digest of '{subscriber.socket_id}:{channel}'"
            )
            await websocket.send(protocol.error_message(protocol.UNAUTHORIZED, text))
            await websocket.send(
                protocol.message(
                    "pusher:subscription_error",
                    {"type": "AuthError", "error": text, "status": 401},
                    channel,
                )
            )
            return
        self._add(subscriber, channel)
        await websocket.send(
            protocol.message("pusher_internal:subscription_succeeded", {}, channel)
        )

    def _authorized(self, subscriber: Subscriber, channel: str, auth: object) -> bool:
        return isinstance(auth, str) and protocol.channel_signature_valid(
            key=self.app.key,
            secret=self.app.secret,
            socket_id=subscriber.socket_id,
            channel=channel,
            auth=auth,
        )

    # HTTP API

    async def _handle_http(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._http_connections[task] = writer
        try:
            while True:
                try:
                    request = await _read_request(reader)
                except BadHttpRequest as error:
                    writer.write(_text(error.status, str(error)).encode(False))
                    await writer.drain()
                    return
                if request is None:
                    return
                if self.fault_delay and request.path.startswith("/apps/"):
                    await asyncio.sleep(self.fault_delay)
                response = self._respond(request)
                writer.write(response.encode(request.keep_alive))
                await writer.drain()
                if not request.keep_alive:
                    return
        except (
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ):
            return
        finally:
            self._http_connections.pop(task, None)
            writer.close()

    def _respond(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz":
            return _text(200, "ok")
        segments = request.path.strip("/").split("/")
        if len(segments) < 3 or segments[0] != "apps":
            return _text(404, f"Not found: {request.path}")
        if segments[1] != self.app.app_id:
            return _text(404, f"Unknown app {segments[1]}")
        problem = protocol.check_request_signature(
            key=self.app.key,
            secret=self.app.secret,
            method=request.method,
            path=request.path,
            params=request.params,
            body=request.body,
            now=time.time(),
        )
        if problem is not None:
            return _text(401, problem)
        if self.fault_status is not None:
            return _text(self.fault_status, "Fault injected by the test")
        return self._route(request, segments[2:])

    def _route(self, request: HttpRequest, rest: list[str]) -> HttpResponse:
        if rest == ["events"]:
            if request.method != "POST":
                return _text(405, "Use POST")
            return self._events(request.body)
        if rest == ["batch_events"]:
            if request.method != "POST":
                return _text(405, "Use POST")
            return self._batch_events(request.body)
        if rest and rest[0] == "channels" and request.method == "GET":
            if len(rest) == 1:
                return self._channels_info(request.params.get("filter_by_prefix", ""))
            if len(rest) == 2:
                count = self.subscription_count(rest[1])
                return _json({"occupied": count > 0, "subscription_count": count})
        return _text(404, f"Not found: {request.path}")

    def _events(self, body: bytes) -> HttpResponse:
        event = _json_object(body)
        if event is None:
            return _text(400, "The body must be a JSON object")
        channels = event.get("channels")
        if channels is None and "channel" in event:
            channels = [event["channel"]]
        if not isinstance(channels, list):
            return _text(400, "channels must be a list of channel names")
        problem = protocol.event_problem(event, channels)
        if problem is not None:
            return _text(400, problem)
        too_large = _too_large(event["data"])
        if too_large is not None:
            return too_large
        self.publish(channels, event["name"], event["data"], event.get("socket_id"))
        return _json({})

    def _batch_events(self, body: bytes) -> HttpResponse:
        payload = _json_object(body)
        batch = payload.get("batch") if payload is not None else None
        if not isinstance(batch, list) or not batch:
            return _text(400, "batch must be a non-empty list of events")
        if len(batch) > protocol.MAX_BATCH_EVENTS:
            return _text(
                400, f"A batch holds at most {protocol.MAX_BATCH_EVENTS} events"
            )
        for event in batch:
            if not isinstance(event, dict):
                return _text(400, "Every batch entry must be an object")
            problem = protocol.event_problem(event, [event.get("channel")])  # type: ignore[list-item]
            if problem is not None:
                return _text(400, problem)
            too_large = _too_large(event["data"])
            if too_large is not None:
                return too_large
        for event in batch:
            self.publish(
                [event["channel"]], event["name"], event["data"], event.get("socket_id")
            )
        return _json({"batch": [{} for _ in batch]})

    def _channels_info(self, prefix: str) -> HttpResponse:
        channels = {
            name: {"subscription_count": len(members)}
            for name, members in self._channels.items()
            if name.startswith(prefix)
        }
        return _json({"channels": channels})


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _too_large(data: str) -> HttpResponse | None:
    size = len(data.encode("utf-8"))
    if size <= protocol.MAX_EVENT_BYTES:
        return None
    return _text(
        413,
        f"Payload too large: the data content of this event is {size} bytes, "
        f"above the allowed maximum ({protocol.MAX_EVENT_BYTES} bytes)",
    )


async def _read_request(reader: asyncio.StreamReader) -> HttpRequest | None:
    """Read one HTTP/1.1 request, or return None at a clean end of stream."""
    line = await reader.readline()
    if not line:
        return None
    try:
        method, target, _version = line.decode("latin-1").split()
    except ValueError:
        raise BadHttpRequest(400, "Malformed request line") from None

    headers: dict[str, str] = {}
    while True:
        header = await reader.readline()
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
        if len(headers) > 100:
            raise BadHttpRequest(400, "Too many headers")

    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise BadHttpRequest(
            400, "Chunked bodies are not supported; send Content-Length"
        )
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise BadHttpRequest(400, "Invalid Content-Length") from None
    if length < 0 or length > MAX_BODY_BYTES:
        raise BadHttpRequest(413, f"The body must be at most {MAX_BODY_BYTES} bytes")
    body = await reader.readexactly(length) if length else b""

    parts = urllib.parse.urlsplit(target)
    params = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    return HttpRequest(method.upper(), parts.path, params, headers, body)


class ServerThread:
    """Runs a :class:`PusherServer` on its own event loop in a daemon thread.

    Use it as a context manager; ports default to free ones.
    """

    def __init__(self, app: AppCredentials, **options: Any) -> None:
        options.setdefault("ws_port", 0)
        options.setdefault("http_port", 0)
        self.server = PusherServer(app, **options)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name="pusher-server", daemon=True
        )

    def __enter__(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(timeout=10):
            raise RuntimeError("the Pusher server did not start within 10 s")
        if self._error is not None:
            raise RuntimeError("the Pusher server failed to start") from self._error
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(timeout=10)

    @property
    def ws_url(self) -> str:
        return f"ws://{self.server.host}:{self.server.ws_port}"

    @property
    def http_port(self) -> int:
        return self.server.http_port

    def set_fault(self, status: int | None) -> None:
        """Make every API call return ``status`` (None ends the fault)."""
        self._loop.call_soon_threadsafe(setattr, self.server, "fault_status", status)

    def set_delay(self, seconds: float) -> None:
        """Delay every API call's response by ``seconds`` (0 ends the fault)."""
        self._loop.call_soon_threadsafe(setattr, self.server, "fault_delay", seconds)

    def subscription_count(self, channel: str) -> int:
        future = asyncio.run_coroutine_threadsafe(self._count(channel), self._loop)
        return future.result(timeout=5)

    async def _count(self, channel: str) -> int:
        return self.server.subscription_count(channel)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stopped = asyncio.Event()
        try:
            await self.server.start()
        except BaseException as error:
            self._error = error
            self._ready.set()
            raise
        self._ready.set()
        await self._stopped.wait()
        await self.server.stop()
