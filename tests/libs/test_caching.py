"""Entity tags, 304 for If-None-Match, and If-Match on writes."""

from __future__ import annotations

import re
import uuid

import pytest
from flask import Flask, Response

from edulink.caching import entity_tag, not_modified, require_if_match, with_etag
from edulink.errors import PreconditionFailed, PreconditionRequired

RESOURCE_ID = uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e")
TAG = entity_tag(RESOURCE_ID, 3)


@pytest.fixture
def app() -> Flask:
    return Flask("caching-test")


# Entity tags


def test_tag_is_stable():
    assert entity_tag(RESOURCE_ID, 3) == entity_tag(str(RESOURCE_ID), 3)


def test_tag_changes_with_version():
    assert entity_tag(RESOURCE_ID, 3) != entity_tag(RESOURCE_ID, 4)


def test_tag_changes_with_id():
    assert entity_tag(RESOURCE_ID, 3) != entity_tag(uuid.uuid4(), 3)


def test_tag_is_short_hex():
    assert re.fullmatch(r"[0-9a-f]{20}", TAG)


# If-None-Match


@pytest.mark.parametrize(
    "header",
    [
        f'"{TAG}"',
        f'"other", "{TAG}"',
        "*",
        f'W/"{TAG}"',
    ],
)
def test_matching_if_none_match_is_304(app, header):
    with app.test_request_context("/", headers={"If-None-Match": header}):
        response = not_modified(TAG)

    assert response is not None
    assert response.status_code == 304
    assert response.headers["ETag"] == f'"{TAG}"'
    assert response.headers["Cache-Control"] == "private, no-cache"
    assert response.get_data() == b""


@pytest.mark.parametrize("header", [None, '"other"', TAG[:-1], f'"{TAG}x"'])
def test_other_if_none_match_is_none(app, header):
    headers = {"If-None-Match": header} if header else {}
    with app.test_request_context("/", headers=headers):
        assert not_modified(TAG) is None


# If-Match


def test_missing_if_match_is_428(app):
    with (
        app.test_request_context("/", method="PATCH"),
        pytest.raises(PreconditionRequired) as caught,
    ):
        require_if_match(TAG)

    assert caught.value.status == 428
    assert "If-Match" in caught.value.detail


def test_weak_current_if_match_passes(app):
    """nginx weakens the ETag of gzipped responses, so W/ of the current tag passes."""
    with app.test_request_context(
        "/", method="PATCH", headers={"If-Match": f'W/"{TAG}"'}
    ):
        require_if_match(TAG)


def test_empty_if_match_is_428(app):
    with (
        app.test_request_context("/", method="PATCH", headers={"If-Match": ""}),
        pytest.raises(PreconditionRequired),
    ):
        require_if_match(TAG)


@pytest.mark.parametrize("header", ['"stale"', 'W/"stale"', "garbage"])
def test_stale_if_match_is_412(app, header):
    with (
        app.test_request_context("/", method="PATCH", headers={"If-Match": header}),
        pytest.raises(PreconditionFailed) as caught,
    ):
        require_if_match(TAG)

    assert caught.value.status == 412


@pytest.mark.parametrize("header", [f'"{TAG}"', f'"stale", "{TAG}"', "*"])
def test_current_if_match_passes(app, header):
    with app.test_request_context("/", method="PATCH", headers={"If-Match": header}):
        require_if_match(TAG)


# Responses


def test_with_etag_sets_headers():
    response = with_etag(Response("{}"), TAG)

    assert response.headers["ETag"] == f'"{TAG}"'
    assert response.headers["Cache-Control"] == "private, no-cache"
