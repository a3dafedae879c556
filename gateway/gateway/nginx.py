"""Render the gateway's nginx configuration and run nginx in the foreground.

``python -m gateway.nginx render --runtime-dir DIR`` writes ``DIR/nginx.conf``
from ``gateway/nginx/nginx.conf.j2`` and prints its path;
``python -m gateway.nginx run --runtime-dir DIR`` renders, checks the file
with ``nginx -t`` and then becomes nginx (``daemon off``). Everything nginx
writes (pid file, logs, temporary files) stays under the runtime directory,
so tests can run their own instances on their own loopback ports.

Settings are environment variables prefixed ``GATEWAY_``; see
:class:`NginxSettings`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import jinja2
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "nginx"
TEMPLATE = "nginx.conf.j2"
NGINX = os.environ.get("NGINX_BINARY", "nginx")


@dataclass(frozen=True)
class Route:
    """Paths matching ``pattern`` go to ``upstream``."""

    pattern: str
    upstream: str
    streaming: bool = False


def _prefixes(*names: str) -> str:
    return f"^/api/v1/({'|'.join(names)})(/|$)"


ROUTES = (
    Route(_prefixes("students", "institutions"), "students"),
    Route(
        _prefixes(
            "internships", "opportunities", "applications", "placements", "employers"
        ),
        "internships",
    ),
    Route(_prefixes("realtime"), "notifications", streaming=True),
    Route(_prefixes("notifications", "support", "alerts"), "notifications"),
    Route(_prefixes("documents", "verify"), "documents"),
    Route(_prefixes("auth", "accounts"), "gateway_app"),
    Route(r"^/\.well-known/jwks\.json$", "gateway_app"),
    Route(r"^/api/docs$", "gateway_app"),
)


@dataclass(frozen=True)
class ErrorPage:
    """A problem+json body that nginx returns for its own errors."""

    name: str
    status: int
    slug: str
    title: str
    detail: str


ERRORS = (
    ErrorPage("400", 400, "bad-request", "Bad Request", "The request is malformed."),
    ErrorPage(
        "404",
        404,
        "not-found",
        "Not Found",
        "No API is routed at this path. Check the URL and the API version.",
    ),
    ErrorPage(
        "405",
        405,
        "method-not-allowed",
        "Method Not Allowed",
        "The method is not allowed here.",
    ),
    ErrorPage(
        "408",
        408,
        "request-timeout",
        "Request Timeout",
        "The request was not received in time.",
    ),
    ErrorPage(
        "413",
        413,
        "content-too-large",
        "Content Too Large",
        "The request body is larger than the gateway accepts.",
    ),
    ErrorPage(
        "414",
        414,
        "uri-too-long",
        "URI Too Long",
        "The request URI is longer than the gateway accepts.",
    ),
    ErrorPage(
        "431",
        431,
        "request-header-fields-too-large",
        "Request Header Fields Too Large",
        "A request header is larger than the gateway accepts.",
    ),
    ErrorPage(
        "500",
        503,
        "service-unavailable",
        "Service Unavailable",
        "The gateway could not check this request. Retry later.",
    ),
    ErrorPage(
        "502",
        502,
        "bad-gateway",
        "Bad Gateway",
        "The service behind this path could not be reached. Retry later.",
    ),
    ErrorPage(
        "503",
        503,
        "service-unavailable",
        "Service Unavailable",
        "The service behind this path is unavailable. Retry later.",
    ),
    ErrorPage(
        "504",
        504,
        "gateway-timeout",
        "Gateway Timeout",
        "The service behind this path did not respond in time.",
    ),
)


class NginxSettings(BaseSettings):
    """Listen address, upstream addresses, timeouts and size limits of nginx."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    app_upstream: str = "127.0.0.1:8000"
    students_upstream: str = "127.0.0.1:8001"
    internships_upstream: str = "127.0.0.1:8002"
    notifications_upstream: str = "127.0.0.1:8003"
    documents_upstream: str = "127.0.0.1:8004"
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://127.0.0.1:5173"],
        description="Comma-separated origins of the single-page app",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated addresses or CIDRs whose X-Forwarded-For "
        "is believed",
    )
    client_max_body_size: str = "1m"
    large_header_buffer: str = "8k"
    client_timeout: str = "10s"
    send_timeout: str = "30s"
    proxy_connect_timeout: str = "2s"
    proxy_read_timeout: str = "30s"
    policy_timeout: str = "5s"
    stream_read_timeout: str = "1h"
    upstream_keepalive: int = Field(default=32, ge=1)
    upstream_keepalive_timeout: str = "1s"
    worker_processes: str = "auto"
    nginx_user: str | None = Field(
        default=None,
        description="Worker user when nginx starts as root, e.g. 'nobody nogroup'",
    )
    access_log: str = Field(
        default="",
        description="Path, 'off', or empty for the runtime directory's logs/access.log",
    )
    error_log: str = "stderr"
    error_log_level: str = "warn"

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    def upstreams(self) -> dict[str, str]:
        return {
            "gateway_app": self.app_upstream,
            "students": self.students_upstream,
            "internships": self.internships_upstream,
            "notifications": self.notifications_upstream,
            "documents": self.documents_upstream,
        }


def template_context(settings: NginxSettings, runtime_dir: Path) -> dict[str, object]:
    access_log = settings.access_log or f"{runtime_dir}/logs/access.log edulink"
    if settings.access_log and settings.access_log != "off":
        access_log = f"{settings.access_log} edulink"
    return {
        **settings.model_dump(),
        "runtime_dir": runtime_dir,
        "listen": f"{settings.host}:{settings.port}",
        "upstreams": settings.upstreams(),
        "routes": ROUTES,
        "errors": ERRORS,
        "access_log": access_log,
        "worker_user": settings.nginx_user,
    }


def render(settings: NginxSettings, runtime_dir: Path) -> Path:
    """Write ``runtime_dir/nginx.conf`` and create its directories. Returns the path."""
    runtime_dir = runtime_dir.resolve()
    for sub in ("logs", "tmp"):
        (runtime_dir / sub).mkdir(parents=True, exist_ok=True)
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - the output is nginx configuration, not HTML
    )
    text = environment.get_template(TEMPLATE).render(
        **template_context(settings, runtime_dir)
    )
    path = runtime_dir / "nginx.conf"
    path.write_text(text, encoding="utf-8")
    return path


def nginx_command(runtime_dir: Path, *extra: str) -> list[str]:
    binary = shutil.which(NGINX) or NGINX
    return [
        binary,
        "-p",
        str(runtime_dir),
        "-c",
        str(runtime_dir / "nginx.conf"),
        "-e",
        "stderr",
        "-g",
        "daemon off;",
        *extra,
    ]


def check_config(runtime_dir: Path) -> None:
    """Run ``nginx -t`` on the rendered file; raise RuntimeError with its output."""
    result = subprocess.run(  # noqa: S603 - our own command
        nginx_command(runtime_dir, "-t", "-q"),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"nginx rejected {runtime_dir}/nginx.conf:\n{result.stderr}")


def wait_for_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port}") from None
            time.sleep(0.05)


@contextmanager
def running_nginx(
    settings: NginxSettings, runtime_dir: Path, *, timeout: float = 10.0
) -> Iterator[subprocess.Popen[bytes]]:
    """Render, start nginx in the foreground and stop it when the block ends."""
    render(settings, runtime_dir)
    check_config(runtime_dir)
    process = subprocess.Popen(  # noqa: S603 - our own command
        nginx_command(runtime_dir),
        stdin=subprocess.DEVNULL,
        stderr=(runtime_dir / "logs" / "error.log").open("ab"),
    )
    try:
        wait_for_port(settings.host, settings.port, timeout)
        yield process
    finally:
        # SIGTERM is nginx's fast shutdown; SIGQUIT would wait for idle
        # keep-alive connections.
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["render", "run"])
    parser.add_argument(
        "--runtime-dir",
        type=Path,
        default=Path("var/run/nginx"),
        help="directory for nginx.conf, the pid file, logs and temporary files",
    )
    args = parser.parse_args(argv)
    settings = NginxSettings()
    path = render(settings, args.runtime_dir)
    if args.command == "render":
        print(path)
        return 0
    try:
        check_config(args.runtime_dir.resolve())
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1
    command = nginx_command(args.runtime_dir.resolve())
    os.execv(command[0], command)  # noqa: S606 - becomes nginx
    return 0  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
