"""Run the development Pusher server: ``python -m notifications.pusher_server``.

The app id, key and secret come from the options or from PUSHER_APP_ID,
PUSHER_KEY and PUSHER_SECRET, the variables the notifications service reads.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import signal
import sys

from edulink.logs import configure_logging
from notifications.pusher_server.server import AppCredentials, PusherServer

log = logging.getLogger(__name__)


def _loopback(host: str) -> str:
    if host == "localhost" or ipaddress.ip_address(host).is_loopback:
        return host
    raise argparse.ArgumentTypeError(
        f"{host} is not a loopback address; this development server binds to "
        "127.0.0.1, ::1 or localhost only"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", type=_loopback, default="127.0.0.1")
    parser.add_argument("--ws-port", type=int, default=6001, help="WebSocket port")
    parser.add_argument("--http-port", type=int, default=6002, help="HTTP API port")
    parser.add_argument("--app-id", default=os.environ.get("PUSHER_APP_ID"))
    parser.add_argument("--key", default=os.environ.get("PUSHER_KEY"))
    parser.add_argument("--secret", default=os.environ.get("PUSHER_SECRET"))
    parser.add_argument(
        "--activity-timeout",
        type=float,
        default=120.0,
        help="Seconds of client silence before the server pings it",
    )
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    for name in ("app_id", "key", "secret"):
        if not getattr(args, name):
            option = name.replace("_", "-")
            parser.error(f"--{option} or PUSHER_{name.upper()} is required")
    return args


async def _serve(server: PusherServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await server.start()
    await stop.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging("pusher-server", args.log_level.upper())
    server = PusherServer(
        AppCredentials(app_id=args.app_id, key=args.key, secret=args.secret),
        host=args.host,
        ws_port=args.ws_port,
        http_port=args.http_port,
        activity_timeout=args.activity_timeout,
    )
    try:
        asyncio.run(_serve(server))
    except OSError as error:
        log.error("the Pusher server could not start: %s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
