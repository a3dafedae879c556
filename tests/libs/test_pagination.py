"""Signed keyset cursors: round trips, tampering, scopes and the page envelope."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import marshmallow as ma
import pytest
from flask import Flask

from edulink.errors import BadRequest
from edulink.pagination import (
    MAX_LIMIT,
    CursorCodec,
    PageQuerySchema,
    page_body,
    scope_of,
)

SECRET = "pagination-test-secret-0123456789"
SCOPE = "students|actor=u-1|verified=None"
TYPES = (datetime, uuid.UUID)


@pytest.fixture
def codec() -> CursorCodec:
    return CursorCodec(SECRET)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _assert_invalid_cursor(error: BadRequest) -> None:
    assert error.status == 400
    assert error.extra["errors"][0]["field"] == "cursor"
    assert error.extra["errors"][0]["location"] == "query"


# Round trips


@pytest.mark.parametrize(
    ("values", "types"),
    [
        (
            (datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC), uuid.uuid4()),
            (datetime, uuid.UUID),
        ),
        (
            (datetime(2024, 5, 1, 9, 0, tzinfo=timezone(timedelta(hours=3))),),
            (datetime,),
        ),
        ((42, "Nairobi", uuid.uuid4()), (int, str, uuid.UUID)),
        ((date(2025, 1, 31), 0), (date, int)),
        ((2.5,), (float,)),
        ((None, 7), (str, int)),
    ],
)
def test_round_trip_keeps_values(codec, values, types):
    cursor = codec.encode(SCOPE, values)

    assert codec.decode(cursor, SCOPE, types) == values


def test_round_trip_keeps_timezone(codec):
    moment = datetime(2024, 5, 1, 9, 0, tzinfo=timezone(timedelta(hours=3)))

    (decoded,) = codec.decode(codec.encode(SCOPE, [moment]), SCOPE, (datetime,))

    assert decoded.utcoffset() == timedelta(hours=3)


def test_cursor_is_url_safe(codec):
    cursor = codec.encode(SCOPE, [datetime.now(UTC), uuid.uuid4()])

    assert set(cursor) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    )


def test_cursor_hides_scope_text(codec):
    cursor = codec.encode("students|actor=secret-subject", [1])

    payload = _unb64(cursor.split(".")[0]).decode()
    assert "secret-subject" not in payload


def test_bytes_secret_equals_text_secret():
    cursor = CursorCodec(SECRET).encode(SCOPE, [1])

    assert CursorCodec(SECRET.encode()).decode(cursor, SCOPE, (int,)) == (1,)


# Rejections


def test_tampered_payload_is_rejected(codec):
    cursor = codec.encode(SCOPE, [5])
    payload, signature = cursor.split(".")
    data = json.loads(_unb64(payload))
    data["v"] = [500]
    forged = f"{_b64(json.dumps(data, separators=(',', ':')).encode())}.{signature}"

    with pytest.raises(BadRequest) as caught:
        codec.decode(forged, SCOPE, (int,))

    _assert_invalid_cursor(caught.value)


def test_tampered_signature_is_rejected(codec):
    payload, signature = codec.encode(SCOPE, [5]).split(".")
    flipped = _b64(bytes(byte ^ 1 for byte in _unb64(signature)))

    with pytest.raises(BadRequest) as caught:
        codec.decode(f"{payload}.{flipped}", SCOPE, (int,))

    _assert_invalid_cursor(caught.value)


def test_truncated_signature_is_rejected(codec):
    cursor = codec.encode(SCOPE, [5])

    with pytest.raises(BadRequest):
        codec.decode(cursor[:-4], SCOPE, (int,))


def test_other_secret_is_rejected(codec):
    cursor = CursorCodec("another-secret-0123456789abc").encode(SCOPE, [5])

    with pytest.raises(BadRequest) as caught:
        codec.decode(cursor, SCOPE, (int,))

    _assert_invalid_cursor(caught.value)


def test_scope_mismatch_is_rejected(codec):
    cursor = codec.encode(scope_of("students", verified=True), [5])

    with pytest.raises(BadRequest) as caught:
        codec.decode(cursor, scope_of("students", verified=False), (int,))

    _assert_invalid_cursor(caught.value)
    assert "another list or other filters" in caught.value.detail


def test_other_list_is_rejected(codec):
    cursor = codec.encode(scope_of("institutions"), [datetime.now(UTC), uuid.uuid4()])

    with pytest.raises(BadRequest):
        codec.decode(cursor, scope_of("students"), TYPES)


def test_value_count_mismatch_is_rejected(codec):
    cursor = codec.encode(SCOPE, [5])

    with pytest.raises(BadRequest):
        codec.decode(cursor, SCOPE, (int, uuid.UUID))


@pytest.mark.parametrize(
    ("values", "types"),
    [
        (["not-a-date"], (datetime,)),
        (["not-a-uuid"], (uuid.UUID,)),
        (["5"], (int,)),
        ([5], (str,)),
        ([[1, 2]], (int,)),
    ],
)
def test_signed_wrong_type_is_rejected(codec, values, types):
    """Even a correctly signed cursor is rejected if its values do not parse."""
    cursor = codec.encode(SCOPE, values)

    with pytest.raises(BadRequest) as caught:
        codec.decode(cursor, SCOPE, types)

    _assert_invalid_cursor(caught.value)


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "no-dot-here",
        ".",
        "....",
        "%%%.%%%",
        "é.é",
        "abc.def",
        "a" * 1024,
        _b64(b"not json") + ".",
    ],
)
def test_garbage_is_rejected(codec, cursor):
    with pytest.raises(BadRequest) as caught:
        codec.decode(cursor, SCOPE, (int,))

    _assert_invalid_cursor(caught.value)


def test_signed_non_object_payload_is_rejected(codec):
    """A payload that is valid JSON but not an object still fails as 400."""
    payload = b"[1, 2]"
    signature = codec._sign(payload)

    with pytest.raises(BadRequest):
        codec.decode(f"{_b64(payload)}.{_b64(signature)}", SCOPE, (int,))


# Scopes


def test_scope_ignores_filter_order():
    assert scope_of("students", a=1, b=2) == scope_of("students", b=2, a=1)


def test_scope_sorts_collections():
    assert scope_of("x", ids=["b", "a"]) == scope_of("x", ids={"a", "b"})


def test_scope_separates_values():
    first = uuid.uuid4()

    assert scope_of("x", institution=first) != scope_of("x", institution=uuid.uuid4())
    assert scope_of("x", verified=None) != scope_of("x", verified=False)
    assert scope_of("x") != scope_of("y")


# Query schema and page body


@pytest.mark.parametrize("limit", ["1", "20", str(MAX_LIMIT)])
def test_limit_in_range_loads(limit):
    assert PageQuerySchema().load({"limit": limit})["limit"] == int(limit)


@pytest.mark.parametrize("limit", ["0", "-1", str(MAX_LIMIT + 1), "abc", "1.5"])
def test_limit_out_of_range_fails(limit):
    with pytest.raises(ma.ValidationError) as caught:
        PageQuerySchema().load({"limit": limit})

    assert "limit" in caught.value.messages


def test_query_defaults():
    assert PageQuerySchema().load({}) == {"limit": 20, "cursor": None}


def test_overlong_cursor_fails():
    with pytest.raises(ma.ValidationError) as caught:
        PageQuerySchema().load({"cursor": "a" * 1025})

    assert "cursor" in caught.value.messages


def test_page_body_sets_link_header():
    app = Flask("pagination-test")
    with app.test_request_context("/api/v1/students?limit=2&verified=true"):
        body, status, headers = page_body([{"id": 1}], "next-cursor")

    assert status == 200
    assert body == {"items": [{"id": 1}], "next": "next-cursor"}
    assert headers["Link"] == (
        "<http://localhost/api/v1/students?limit=2&verified=true&cursor=next-cursor>;"
        ' rel="next"'
    )


def test_page_body_replaces_old_cursor():
    app = Flask("pagination-test")
    with app.test_request_context("/items?cursor=old&limit=5"):
        _, _, headers = page_body([], "new")

    assert "cursor=new" in headers["Link"]
    assert "old" not in headers["Link"]


def test_last_page_has_no_link():
    app = Flask("pagination-test")
    with app.test_request_context("/items?limit=5"):
        body, _, headers = page_body([{"id": 1}], None)

    assert headers == {}
    assert body["next"] is None
