"""Through the real nginx: routing, header hygiene, CORS, sizes, upstream errors."""

from __future__ import annotations

import gzip
import http.client
import uuid
from contextlib import ExitStack

import pytest

from gateway.nginx import running_nginx
from tests.gateway.conftest import unique_ip
from tests.gateway.harness import (
    SPA_ORIGIN,
    UPSTREAM_NAMES,
    client,
    free_port,
    nginx_settings,
)

ROUTES = [
    ("/api/v1/students/me", "students"),
    ("/api/v1/institutions", "students"),
    ("/api/v1/internships/1", "internships"),
    ("/api/v1/opportunities", "internships"),
    ("/api/v1/applications", "internships"),
    ("/api/v1/placements", "internships"),
    ("/api/v1/employers/7", "internships"),
    ("/api/v1/notifications", "notifications"),
    ("/api/v1/support/tickets", "notifications"),
    ("/api/v1/alerts", "notifications"),
    ("/api/v1/realtime/events", "notifications"),
    ("/api/v1/documents/9", "documents"),
    ("/api/v1/verify/ABC123", "documents"),
]


def problem(response) -> dict:
    assert response.headers["Content-Type"] == "application/problem+json"
    return response.json()


@pytest.mark.parametrize(("path", "service"), ROUTES)
def test_route_reaches_its_service(stack, path, service):
    response = client(unique_ip()).get(stack.url + path + "?page=2")

    assert response.status_code == 200
    assert response.json()["service"] == service
    assert response.json()["path"] == path
    assert response.json()["query"] == "page=2"


@pytest.mark.parametrize(
    "path", ["/", "/api/v1/unknown", "/api/v1/studentsx", "/api/v2/students"]
)
def test_unrouted_path_is_problem_404(stack, path):
    response = client(unique_ip()).get(stack.url + path)

    assert response.status_code == 404
    assert problem(response)["status"] == 404
    assert problem(response)["request_id"] == response.headers["X-Request-ID"]


def test_gateway_app_paths_reach_app(stack):
    response = client(unique_ip()).get(stack.url + "/.well-known/jwks.json")

    assert response.status_code == 200
    assert response.json()["keys"]


def test_client_identity_headers_never_reach_upstream(stack):
    forged = {
        "X-User-Id": str(uuid.uuid4()),
        "X-User-Role": "system_admin",
        "X-Org-Ids": str(uuid.uuid4()),
        "X-Edulink-Trusted": "yes",
        "X-Edulink-Policy-Status": "200",
    }

    client(unique_ip()).get(stack.url + "/api/v1/institutions", headers=forged)

    seen = {name.lower() for name in stack.last_seen("students")["headers"]}
    assert "x-user-id" not in seen
    assert "x-user-role" not in seen
    assert "x-org-ids" not in seen
    assert not [name for name in seen if name.startswith("x-edulink-")]


def test_identity_headers_come_from_token(stack, tokens):
    user_id = uuid.uuid4()
    token = tokens.mint("student", subject=user_id)

    client().get(
        stack.url + "/api/v1/institutions",
        headers={"Authorization": f"Bearer {token}", "X-User-Id": "forged"},
    )

    headers = stack.last_seen("students")["headers"]
    assert headers["X-User-Id"] == str(user_id)
    assert headers["X-User-Role"] == "student"
    assert headers["Authorization"] == f"Bearer {token}"


def test_well_formed_request_id_is_kept(stack):
    response = client(unique_ip()).get(
        stack.url + "/api/v1/institutions", headers={"X-Request-ID": "req-42.a:b"}
    )

    assert response.headers["X-Request-ID"] == "req-42.a:b"
    assert stack.last_seen("students")["headers"]["X-Request-Id"] == "req-42.a:b"


def test_malformed_request_id_is_replaced(stack):
    response = client(unique_ip()).get(
        stack.url + "/api/v1/institutions", headers={"X-Request-ID": "bad id<script>"}
    )

    replaced = response.headers["X-Request-ID"]
    assert replaced != "bad id<script>"
    assert len(replaced) == 32
    assert stack.last_seen("students")["headers"]["X-Request-Id"] == replaced


def test_forwarded_for_ignored_from_untrusted_address(stack):
    client().get(
        stack.url + "/api/v1/institutions", headers={"X-Forwarded-For": "203.0.113.9"}
    )

    headers = stack.last_seen("students")["headers"]
    assert headers["X-Forwarded-For"] == "127.0.0.1"
    assert headers["X-Real-Ip"] == "127.0.0.1"


def test_forwarded_for_believed_from_trusted_proxy(stack):
    client("203.0.113.10").get(stack.url + "/api/v1/institutions")

    assert stack.last_seen("students")["headers"]["X-Real-Ip"] == "203.0.113.10"


def test_preflight_from_app_origin_is_answered(stack):
    response = client().options(
        stack.url + "/api/v1/applications",
        headers={
            "Origin": SPA_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )

    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]


def test_preflight_from_other_origin_gets_no_cors(stack):
    response = client(unique_ip()).options(
        stack.url + "/api/v1/applications",
        headers={
            "Origin": "https://evil.test",
            "Access-Control-Request-Method": "POST",
        },
    )

    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_headers_on_app_origin_response(stack):
    response = client(unique_ip()).get(
        stack.url + "/api/v1/institutions", headers={"Origin": SPA_ORIGIN}
    )

    assert response.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    assert "RateLimit-Remaining" in response.headers["Access-Control-Expose-Headers"]
    assert "Origin" in response.headers["Vary"]


def test_json_is_gzipped_on_request(stack):
    response = client(unique_ip()).get(
        stack.url + "/api/v1/opportunities/large",
        headers={"Accept-Encoding": "gzip"},
        stream=True,
    )

    raw = response.raw.read(decode_content=False)
    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(raw).startswith(b'{"items"')


def test_oversized_body_is_problem_413(stack):
    response = client(unique_ip()).post(
        stack.url + "/api/v1/documents", data=b"x" * (65 * 1024)
    )

    assert response.status_code == 413
    assert problem(response)["status"] == 413
    assert stack.stubs["documents"].seen == [] or all(
        record["body_bytes"] < 65 * 1024 for record in stack.stubs["documents"].seen
    )


def test_oversized_header_is_problem_431(stack):
    response = client(unique_ip()).get(
        stack.url + "/api/v1/institutions", headers={"X-Padding": "a" * 5000}
    )

    assert response.status_code == 431
    assert problem(response)["status"] == 431


def test_oversized_request_line_is_problem_414(stack):
    response = client(unique_ip()).get(
        stack.url + "/api/v1/institutions?q=" + "a" * 5000
    )

    assert response.status_code == 414
    assert problem(response)["status"] == 414


def test_malformed_request_is_problem_400(stack):
    host, port = stack.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.putrequest("GET", "/api/v1/institutions", skip_host=True)
    connection.putheader("Host", "a b c")
    connection.endheaders()

    response = connection.getresponse()

    assert response.status == 400
    assert response.getheader("Content-Type") == "application/problem+json"
    connection.close()


def test_upstream_403_stays_403(stack):
    response = client(unique_ip()).get(stack.url + "/api/v1/internships/forbidden")

    assert response.status_code == 403
    assert response.json()["detail"] == "stub"


def test_upstream_timeout_is_problem_504(stack):
    response = client(unique_ip()).get(stack.url + "/api/v1/documents/slow")

    assert response.status_code == 504
    assert problem(response)["status"] == 504


@pytest.fixture(scope="module")
def dead_upstreams(stack, tmp_path_factory):
    """An nginx whose services listen nowhere, beside one whose app is gone too."""
    down = free_port()
    ports = dict.fromkeys(UPSTREAM_NAMES, down)
    with ExitStack() as running:
        urls = {}
        for name, app_port in (("services", stack.app_port), ("app", down)):
            settings = nginx_settings(
                port=free_port(), app_port=app_port, upstream_ports=ports
            )
            running.enter_context(
                running_nginx(settings, tmp_path_factory.mktemp(f"down-{name}"))
            )
            urls[name] = f"http://127.0.0.1:{settings.port}"
        yield urls


def test_upstream_down_is_problem_502(dead_upstreams):
    response = client(unique_ip()).get(dead_upstreams["services"] + "/api/v1/alerts")

    assert response.status_code == 502
    assert problem(response)["status"] == 502


def test_gateway_app_down_is_problem_503(dead_upstreams):
    response = client(unique_ip()).get(dead_upstreams["app"] + "/api/v1/alerts")

    assert response.status_code == 503
    assert problem(response)["status"] == 503
