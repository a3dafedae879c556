"""ServiceClient against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from edulink.http import (
    OutgoingCall,
    ServiceClient,
    UpstreamCallError,
    UpstreamClientError,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
    add_call_listener,
    remove_call_listener,
    service_client_from_settings,
)
from edulink.logs import bound_context
from edulink.settings import PlatformSettings
from tests.libs.local_server import closed_port, running_server

TOKEN = "service-token-7f3a9c"


class Upstream:
    """WSGI app standing in for another service, counting hits per path.

    ``/flaky/<id>?fail=N&status=S`` returns S for the first N hits, then 200.
    ``/status/<code>`` returns that status with a problem+json body.
    ``/slow?seconds=S`` sleeps S seconds first. ``/echo`` returns the request.
    """

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        with self._lock:
            self.hits[request.path] += 1
            count = self.hits[request.path]
        response = self.respond(request, count)
        return response(environ, start_response)

    def respond(self, request: Request, count: int) -> Response:
        parts = request.path.strip("/").split("/")
        if parts[0] == "echo":
            body = {
                "method": request.method,
                "request_id": request.headers.get("X-Request-ID"),
                "authorization": request.headers.get("Authorization"),
                "args": request.args.to_dict(),
                "json": request.get_json(silent=True),
            }
            return Response(json.dumps(body), mimetype="application/json")
        if parts[0] == "flaky":
            if count <= int(request.args.get("fail", "0")):
                return Response("busy", status=int(request.args.get("status", "503")))
            return Response(json.dumps({"hits": count}), mimetype="application/json")
        if parts[0] == "status":
            status = int(parts[1])
            problem = {"status": status, "detail": f"upstream said {status}"}
            return Response(
                json.dumps(problem), status=status, mimetype="application/problem+json"
            )
        if parts[0] == "slow":
            time.sleep(float(request.args.get("seconds", "1")))
            return Response("{}", mimetype="application/json")
        if parts[0] == "not-json":
            return Response("<html>oops</html>", mimetype="text/html")
        if parts[0] == "empty":
            return Response(status=204)
        if parts[0] == "redirect":
            return Response(status=302, headers={"Location": "/echo"})
        return Response("no route", status=404)


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[Upstream, str]]:
    app = Upstream()
    with running_server(app) as base_url:
        yield app, base_url


@pytest.fixture
def client(upstream: tuple[Upstream, str]) -> Iterator[ServiceClient]:
    _app, base_url = upstream
    with ServiceClient(
        base_url,
        name="students",
        token_provider=lambda: TOKEN,
        read_timeout=2.0,
        backoff=0.01,
    ) as service_client:
        yield service_client


@pytest.fixture
def calls() -> Iterator[list[OutgoingCall]]:
    recorded: list[OutgoingCall] = []
    add_call_listener(recorded.append)
    yield recorded
    remove_call_listener(recorded.append)


def unique(prefix: str) -> str:
    return f"/{prefix}/{uuid.uuid4().hex}"


# Successful calls and header propagation.


def test_get_json_returns_body(client: ServiceClient) -> None:
    body = client.get_json("/echo", {"limit": 5})

    assert body["method"] == "GET"
    assert body["args"] == {"limit": "5"}


def test_post_json_sends_body(client: ServiceClient) -> None:
    body = client.post_json("/echo", {"name": "Ada"})

    assert body["method"] == "POST"
    assert body["json"] == {"name": "Ada"}


def test_request_id_is_propagated(client: ServiceClient) -> None:
    with bound_context(request_id="req-42"):
        body = client.get_json("/echo")

    assert body["request_id"] == "req-42"


def test_service_token_is_sent(client: ServiceClient) -> None:
    body = client.get_json("/echo")

    assert body["authorization"] == f"Bearer {TOKEN}"


def test_no_token_or_request_id_sends_neither(
    upstream: tuple[Upstream, str],
) -> None:
    _app, base_url = upstream
    with ServiceClient(base_url) as anonymous:
        body = anonymous.get_json("/echo")

    assert body["authorization"] is None
    assert body["request_id"] is None


def test_client_from_settings_sends_token(upstream: tuple[Upstream, str]) -> None:
    _app, base_url = upstream
    settings = PlatformSettings(
        database_url="postgresql://root@127.0.0.1/unused",
        jwt_issuer="https://identity.edulink.test",
        jwt_audience="edulink",
        jwks_file="/nonexistent/jwks.json",
        cursor_secret="0123456789abcdef0123",
        service_token=TOKEN,
        http_read_timeout=3.0,
    )

    with service_client_from_settings(base_url, settings, name="students") as client:
        body = client.get_json("/echo")

    assert body["authorization"] == f"Bearer {TOKEN}"
    assert client.read_timeout == 3.0


def test_empty_response_returns_none(client: ServiceClient) -> None:
    assert client.delete("/empty") is None


def test_absolute_path_is_rejected(client: ServiceClient) -> None:
    with pytest.raises(ValueError, match="must be relative"):
        client.get_json("http://127.0.0.1:1/steal")


# Retries.


def test_get_retried_until_success(
    client: ServiceClient, upstream: tuple[Upstream, str]
) -> None:
    app, _ = upstream
    path = unique("flaky")

    body = client.get_json(path, {"fail": 2, "status": 503})

    assert body == {"hits": 3}
    assert app.hits[path] == 3


def test_put_retried_on_bad_gateway(
    client: ServiceClient, upstream: tuple[Upstream, str]
) -> None:
    app, _ = upstream
    path = unique("flaky")

    client.put_json(f"{path}?fail=1&status=502", {"x": 1})

    assert app.hits[path] == 2


def test_get_retries_exhausted_is_unavailable(
    client: ServiceClient, upstream: tuple[Upstream, str]
) -> None:
    app, _ = upstream
    path = unique("flaky")

    with pytest.raises(UpstreamUnavailable) as caught:
        client.get_json(path, {"fail": 10, "status": 503})

    assert app.hits[path] == 3
    assert caught.value.status == 503
    assert caught.value.upstream_status == 503


def test_post_not_retried(
    client: ServiceClient, upstream: tuple[Upstream, str]
) -> None:
    app, _ = upstream
    path = unique("flaky")

    with pytest.raises(UpstreamUnavailable):
        client.post_json(f"{path}?fail=1&status=503", {"x": 1})

    assert app.hits[path] == 1


def test_patch_not_retried(
    client: ServiceClient, upstream: tuple[Upstream, str]
) -> None:
    app, _ = upstream
    path = unique("flaky")

    with pytest.raises(UpstreamError):
        client.patch_json(f"{path}?fail=1&status=502", {"x": 1})

    assert app.hits[path] == 1


def test_internal_error_not_retried(
    client: ServiceClient, upstream: tuple[Upstream, str]
) -> None:
    app, _ = upstream
    path = unique("flaky")

    with pytest.raises(UpstreamError) as caught:
        client.get_json(path, {"fail": 1, "status": 500})

    assert app.hits[path] == 1
    assert caught.value.status == 502


def test_retry_waits_with_backoff(upstream: tuple[Upstream, str]) -> None:
    _app, base_url = upstream
    path = unique("flaky")
    started = time.perf_counter()

    with ServiceClient(base_url, backoff=0.1, retries=2) as slow_client:
        slow_client.get_json(path, {"fail": 2})

    # Waits 0.1 s, then 0.2 s.
    assert time.perf_counter() - started >= 0.3


def test_retry_is_logged(
    client: ServiceClient, caplog: pytest.LogCaptureFixture
) -> None:
    path = unique("flaky")

    with caplog.at_level(logging.WARNING, logger="edulink.http"):
        client.get_json(path, {"fail": 1})

    assert f"retrying GET {path} on students" in caplog.text
    assert "(attempt 2 of 3)" in caplog.text


# Timeouts and connection errors.


def test_read_timeout_not_retried(upstream: tuple[Upstream, str]) -> None:
    app, base_url = upstream
    path = unique("slow")
    started = time.perf_counter()

    with (
        ServiceClient(base_url, name="documents", read_timeout=0.2) as impatient,
        pytest.raises(UpstreamTimeout) as caught,
    ):
        impatient.get_json(path, {"seconds": 1})

    assert time.perf_counter() - started < 0.9
    assert app.hits[path] == 1
    assert caught.value.status == 504
    assert "did not respond within 0.2 s" in caught.value.detail


def test_connection_refused_is_unavailable(calls: list[OutgoingCall]) -> None:
    base_url = f"http://127.0.0.1:{closed_port()}"

    with (
        ServiceClient(base_url, name="notifications", backoff=0.01) as client,
        pytest.raises(UpstreamUnavailable) as caught,
    ):
        client.get_json("/v1/notifications")

    assert caught.value.status == 503
    assert "could not be reached" in caught.value.detail
    assert calls[-1].attempts == 3


def test_connection_refused_post_tried_once(calls: list[OutgoingCall]) -> None:
    base_url = f"http://127.0.0.1:{closed_port()}"

    with (
        ServiceClient(base_url, backoff=0.01) as client,
        pytest.raises(UpstreamUnavailable),
    ):
        client.post_json("/v1/notifications", {"kind": "x"})

    assert calls[-1].attempts == 1


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A listening port whose accept queue is full, so new connections hang."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.05)
    yield port
    for filler in fillers:
        filler.close()
    listener.close()


def test_connect_timeout_is_timeout(full_backlog: int) -> None:
    base_url = f"http://127.0.0.1:{full_backlog}"

    with (
        ServiceClient(base_url, connect_timeout=0.1, retries=0) as client,
        pytest.raises(UpstreamTimeout) as caught,
    ):
        client.get_json("/v1/x")

    assert "did not accept a connection within 0.1 s" in caught.value.detail


# Error mapping.


def test_not_found_carries_problem(client: ServiceClient) -> None:
    with pytest.raises(UpstreamClientError) as caught:
        client.get_json("/status/404")

    assert caught.value.upstream_status == 404
    assert caught.value.problem == {"status": 404, "detail": "upstream said 404"}
    assert caught.value.status == 502


def test_gateway_timeout_maps_to_timeout(client: ServiceClient) -> None:
    with pytest.raises(UpstreamTimeout) as caught:
        client.get_json("/status/504")

    assert caught.value.upstream_status == 504


def test_invalid_json_is_bad_gateway(client: ServiceClient) -> None:
    with pytest.raises(UpstreamError) as caught:
        client.get_json("/not-json")

    assert "invalid JSON" in caught.value.detail


def test_redirect_is_not_followed(
    client: ServiceClient, upstream: tuple[Upstream, str]
) -> None:
    app, _ = upstream
    echo_hits = app.hits["/echo"]

    with pytest.raises(UpstreamError):
        client.get_json("/redirect")

    assert app.hits["/echo"] == echo_hits


def test_detail_names_service_and_path(client: ServiceClient) -> None:
    with pytest.raises(UpstreamClientError) as caught:
        client.get_json("/status/409?secret=1")

    assert caught.value.detail == (
        "The students service rejected GET /status/409 with status 409."
    )


@pytest.mark.parametrize(
    "path", ["/status/401", "/status/500", "/status/503", "/not-json", "/redirect"]
)
def test_failures_never_leak_token(
    client: ServiceClient, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    with caplog.at_level(logging.DEBUG), pytest.raises(UpstreamCallError) as caught:
        client.get_json(path)

    assert TOKEN not in caught.value.detail
    assert TOKEN not in json.dumps(caught.value.extra, default=str)
    assert TOKEN not in caplog.text


# Call events.


def test_listener_sees_one_event_per_call(
    client: ServiceClient, calls: list[OutgoingCall]
) -> None:
    path = unique("flaky")

    client.get_json(path, {"fail": 1})

    assert len(calls) == 1
    assert calls[0].service == "students"
    assert calls[0].method == "GET"
    assert calls[0].path == path
    assert calls[0].status == 200
    assert calls[0].attempts == 2
    assert calls[0].error is None


def test_listener_sees_failed_call(
    client: ServiceClient, calls: list[OutgoingCall]
) -> None:
    with pytest.raises(UpstreamClientError):
        client.get_json("/status/404")

    assert calls[0].status == 404
    assert calls[0].error == "UpstreamClientError"


def test_removed_listener_sees_nothing(client: ServiceClient) -> None:
    recorded: list[OutgoingCall] = []
    add_call_listener(recorded.append)
    remove_call_listener(recorded.append)

    client.get_json("/echo")

    assert recorded == []
