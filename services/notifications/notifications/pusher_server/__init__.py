"""A Pusher-protocol server for development and tests, on loopback only.

It speaks the two halves of Pusher Channels that Edulink uses:

- the HTTP events API (``POST /apps/<app_id>/events`` and ``batch_events``,
  plus ``GET /apps/<app_id>/channels``) with Pusher's request signatures;
- the WebSocket protocol, version 7, that pusher-js speaks: connection
  set-up, subscriptions (private channels need a signature), ping and pong,
  errors with Pusher's codes, and events delivered to every subscriber but
  the excluded socket.

websockets only accepts GET requests, so the two halves listen on two ports
(WebSocket 6001, HTTP 6002 by default), as hosted Pusher uses two hosts.

Run it with ``python -m notifications.pusher_server``; tests use
:class:`~notifications.pusher_server.server.ServerThread` and the client in
:mod:`notifications.pusher_server.client`.
"""

from notifications.pusher_server.server import (
    AppCredentials,
    PusherServer,
    ServerThread,
)

__all__ = ["AppCredentials", "PusherServer", "ServerThread"]
