"""Processes and servers for gateway tests: stubs, the gateway app, nginx, clients.

Everything listens on 127.0.0.1 ports chosen by the OS. A client that should
look like a distinct remote address connects from 127.0.0.2, which the
rendered nginx trusts as a proxy, and names the address in X-Forwarded-For.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from gateway.nginx import NginxSettings, running_nginx, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
TRUSTED_PROXY = "127.0.0.2"
SPA_ORIGIN = "https://app.edulink.test"
UPSTREAM_NAMES = ("students", "internships", "notifications", "documents")

TEST_SETTINGS: dict[str, Any] = {
    "jwt_issuer": "http://gateway.edulink.test",
    "jwt_audience": "edulink",
    "cursor_secret": "gateway-test-cursor-secret",
    "email_delivery": "memory",
    "password_hash_time_cost": 1,
    "password_hash_memory_kib": 1024,
    "password_hash_parallelism": 1,
    "log_level": "WARNING",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Upstream stubs.


@dataclass
class StubUpstream:
    """A fake service that records each request and echoes it back as JSON.

    Paths ending in ``/slow`` wait ``slow_seconds``, ``/forbidden`` return a
    403 problem and ``/large`` a 64 KiB JSON body.
    """

    name: str
    slow_seconds: float = 3.0
    seen: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data()
        record = {
            "service": self.name,
            "method": request.method,
            "path": request.path,
            "query": request.query_string.decode(),
            "headers": dict(request.headers),
            "body_bytes": len(body),
        }
        self.seen.append(record)
        if request.path.endswith("/slow"):
            time.sleep(self.slow_seconds)
        if request.path.endswith("/forbidden"):
            response = Response(
                json.dumps({"status": 403, "title": "Forbidden", "detail": "stub"}),
                status=403,
                mimetype="application/problem+json",
            )
        elif request.path.endswith("/large"):
            response = Response(
                json.dumps({"items": ["x" * 64] * 1024}), mimetype="application/json"
            )
        else:
            status = 201 if request.method == "POST" else 200
            response = Response(
                json.dumps(record), status=status, mimetype="application/json"
            )
        # Services echo the request id; nginx must not send it twice.
        response.headers["X-Request-ID"] = request.headers.get("X-Request-ID", "")
        return response(environ, start_response)


@contextmanager
def serving(app: Any, port: int = 0) -> Iterator[int]:
    """Serve a WSGI app on 127.0.0.1 in a thread; yield its port."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    )
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# nginx in front of a gateway app and stubs.


@dataclass
class Stack:
    """A running nginx with the addresses behind it."""

    url: str
    app_port: int
    stubs: dict[str, StubUpstream]
    runtime_dir: Path

    def last_seen(self, service: str) -> dict[str, Any]:
        return self.stubs[service].seen[-1]


def nginx_settings(
    *, port: int, app_port: int, upstream_ports: dict[str, int], **extra: Any
) -> NginxSettings:
    values: dict[str, Any] = {
        "port": port,
        "app_upstream": f"127.0.0.1:{app_port}",
        "cors_origins": [SPA_ORIGIN],
        "trusted_proxies": [TRUSTED_PROXY],
        "client_max_body_size": "64k",
        "large_header_buffer": "4k",
        "proxy_connect_timeout": "1s",
        "proxy_read_timeout": "1s",
        "worker_processes": "1",
        "nginx_user": "nobody nogroup",
        **extra,
    }
    for name in UPSTREAM_NAMES:
        values[f"{name}_upstream"] = f"127.0.0.1:{upstream_ports[name]}"
    return NginxSettings(**values)


@contextmanager
def nginx_stack(app: Any, runtime_dir: Path, **nginx_extra: Any) -> Iterator[Stack]:
    """Start stubs, serve ``app`` and start nginx in front of them.

    ``app`` is a WSGI app, or the port of an app that is already serving.
    """
    with ExitStack() as stack:
        stubs = {name: StubUpstream(name) for name in UPSTREAM_NAMES}
        ports = {
            name: stack.enter_context(serving(stub)) for name, stub in stubs.items()
        }
        app_port = app if isinstance(app, int) else stack.enter_context(serving(app))
        port = free_port()
        settings = nginx_settings(
            port=port, app_port=app_port, upstream_ports=ports, **nginx_extra
        )
        stack.enter_context(running_nginx(settings, runtime_dir))
        yield Stack(
            url=f"http://127.0.0.1:{port}",
            app_port=app_port,
            stubs=stubs,
            runtime_dir=runtime_dir,
        )


# Clients.


class _SourceAddressAdapter(HTTPAdapter):
    def __init__(self, source: str) -> None:
        self._source = source
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self._source, 0)
        super().init_poolmanager(*args, **kwargs)


def client(remote_ip: str | None = None) -> requests.Session:
    """Return a session; with ``remote_ip`` it connects as if from that address.

    The session connects from the trusted proxy address and sends
    ``X-Forwarded-For: remote_ip``, which nginx then takes as the client.
    """
    session = requests.Session()
    session.trust_env = False
    if remote_ip is not None:
        session.mount("http://", _SourceAddressAdapter(TRUSTED_PROXY))
        session.headers["X-Forwarded-For"] = remote_ip
    return session


# The gateway app under gunicorn, for tests with several worker processes.


@contextmanager
def gunicorn_gateway(
    env: dict[str, str], *, workers: int, log_path: Path
) -> Iterator[int]:
    """Run ``gateway.app:create_app()`` under gunicorn; yield its port."""
    port = free_port()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                # gunicorn 27 opens a control socket at one path per user by
                # default, which other gunicorn processes would share.
                "--no-control-socket",
                "gateway.app:create_app()",
            ],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=log,
        )
    try:
        wait_for_port("127.0.0.1", port, timeout=30)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# Many hits on one counter from one process.


def hammer_counter(
    uri: str, strategy: str, limit: str, key: str, attempts: int, threads: int
) -> int:
    """Hit ``key`` ``attempts`` times from ``threads`` threads; return admitted hits.

    Runs in a child process, so it builds its own storage and connections.
    """
    from limits import parse
    from limits.storage import storage_from_string
    from limits.strategies import STRATEGIES

    import gateway.ratelimit.storage  # noqa: F401 - registers the scheme

    storage = storage_from_string(uri, pool_size=threads)
    limiter = STRATEGIES[strategy](storage)
    item = parse(limit)
    admitted = 0
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def run(count: int) -> None:
        nonlocal admitted
        barrier.wait()
        for _ in range(count):
            if limiter.hit(item, key):
                with lock:
                    admitted += 1

    workers = [
        threading.Thread(target=run, args=(attempts // threads,))
        for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    storage.close()
    return admitted
