"""The hash chain without a database: canonical form, hashes and verification."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from edulink.ledger.chain import (
    HASHED_FIELDS,
    canonical_json,
    entry_hash,
    verify_chain,
)

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make_chain(length: int) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    previous = None
    for seq in range(1, length + 1):
        entry: dict[str, Any] = {
            "id": 100 + seq,
            "entity_type": "application",
            "entity_id": "app-1",
            "seq": seq,
            "event_id": uuid.uuid4(),
            "event_type": "application.status_changed",
            "actor": "user-1",
            "old": {"status": "APPLIED"},
            "new": {"status": "SHORTLISTED", "score": 1.5},
            "occurred_at": START + timedelta(minutes=seq),
            "recorded_at": START + timedelta(minutes=seq, seconds=1),
            "request_id": "req-1",
        }
        entry["prev_hash"] = previous
        entry["hash"] = entry_hash(entry, previous)
        previous = entry["hash"]
        entries.append(entry)
    return entries


def test_canonical_json_is_compact_and_sorted() -> None:
    assert canonical_json({"b": 1, "a": [1, "é"]}) == '{"a":[1,"é"],"b":1}'


def test_canonical_json_rejects_nan() -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        canonical_json({"score": math.nan})


@pytest.mark.parametrize("field", HASHED_FIELDS)
def test_hash_covers_every_field(field: str) -> None:
    entry = make_chain(1)[0]
    changed = dict(entry)
    if field in ("occurred_at", "recorded_at"):
        changed[field] = entry[field] + timedelta(microseconds=1)
    elif field == "event_id":
        changed[field] = uuid.uuid4()
    elif field == "seq":
        changed[field] = 2
    else:
        changed[field] = "changed"
    assert entry_hash(changed, None) != entry_hash(entry, None)


def test_hash_covers_previous_hash() -> None:
    entry = make_chain(1)[0]
    assert entry_hash(entry, "0" * 64) != entry_hash(entry, None)


def test_hash_ignores_timezone_spelling() -> None:
    entry = make_chain(1)[0]
    shifted = dict(entry)
    shifted["occurred_at"] = entry["occurred_at"].astimezone(
        datetime.now().astimezone().tzinfo
    )
    assert entry_hash(shifted, None) == entry_hash(entry, None)


def test_intact_chain_verifies() -> None:
    report = verify_chain("application", "app-1", make_chain(5))
    assert report.valid
    assert report.entries == 5


def test_edited_entry_detected() -> None:
    chain = make_chain(5)
    chain[2]["new"] = {"status": "ACCEPTED", "score": 1.5}
    report = verify_chain("application", "app-1", chain)
    assert report.first_broken is not None
    assert report.first_broken.seq == 3
    assert report.first_broken.entry_id == 103
    assert "contents" in report.first_broken.reason


def test_edit_with_rehash_breaks_next_link() -> None:
    chain = make_chain(5)
    chain[2]["actor"] = "someone-else"
    chain[2]["hash"] = entry_hash(chain[2], chain[2]["prev_hash"])
    report = verify_chain("application", "app-1", chain)
    assert report.first_broken is not None
    assert report.first_broken.seq == 4
    assert "prev_hash" in report.first_broken.reason


def test_removed_entry_detected() -> None:
    chain = make_chain(5)
    del chain[1]
    report = verify_chain("application", "app-1", chain)
    assert report.first_broken is not None
    assert report.first_broken.seq == 3
    assert "sequence gap" in report.first_broken.reason
