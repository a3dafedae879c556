"""Through the real nginx: the API docs page and each OpenAPI document."""

from __future__ import annotations

import json
import re

import pytest

from gateway.docs import SPECS
from tests.gateway.conftest import unique_ip
from tests.gateway.harness import client

SERVICE_SPECS = [
    ("/api/v1/students/openapi.json", "students"),
    ("/api/v1/internships/openapi.json", "internships"),
    ("/api/v1/notifications/openapi.json", "notifications"),
    ("/api/v1/documents/openapi.json", "documents"),
]


def test_docs_page_is_html(stack):
    response = client(unique_ip()).get(stack.url + "/api/docs")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_docs_page_lists_every_spec(stack):
    body = client(unique_ip()).get(stack.url + "/api/docs").text

    listed = json.loads(re.search(r"const SPECS = (.*);", body).group(1))
    assert [path for _, path in listed] == [path for _, path in SPECS]
    assert {path for path, _ in SERVICE_SPECS} < {path for _, path in listed}


@pytest.mark.parametrize(("path", "service"), SERVICE_SPECS)
def test_service_spec_routed_through_nginx(stack, path, service):
    response = client(unique_ip()).get(stack.url + path)

    assert response.status_code == 200
    assert response.json()["service"] == service
    assert response.json()["path"] == path


def test_gateway_spec_served_through_nginx(stack):
    response = client(unique_ip()).get(stack.url + "/api/v1/auth/openapi.json")

    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")
    assert "/api/v1/auth/login" in response.json()["paths"]
