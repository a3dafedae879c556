"""Hash chain of ledger entries: the canonical form, the hash, and verification.

An entry's hash is SHA-256 over the canonical JSON of its fields, and those
fields include the previous entry's hash, so changing, removing or reordering
any stored entry breaks every link after it. Canonical JSON here is Python's
``json.dumps`` with sorted keys, no whitespace, UTF-8 text and NaN rejected.
Timestamps are UTC ISO 8601 with microseconds, e.g.
``2024-05-01T12:00:00.000000+00:00``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# The fields an entry's hash covers, in addition to prev_hash.
HASHED_FIELDS = (
    "entity_type",
    "entity_id",
    "seq",
    "event_id",
    "event_type",
    "actor",
    "old",
    "new",
    "occurred_at",
    "recorded_at",
    "request_id",
)


def canonical_json(value: Any) -> str:
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def timestamp_text(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("ledger timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(entry: Mapping[str, Any], prev_hash: str | None) -> str:
    """Return the hex SHA-256 of ``entry``'s hashed fields and ``prev_hash``."""
    body: dict[str, Any] = {name: entry[name] for name in HASHED_FIELDS}
    body["event_id"] = str(uuid.UUID(str(body["event_id"])))
    body["occurred_at"] = timestamp_text(body["occurred_at"])
    body["recorded_at"] = timestamp_text(body["recorded_at"])
    body["prev_hash"] = prev_hash
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


@dataclass(frozen=True)
class BrokenLink:
    """The first entry of a chain that does not verify, and why."""

    seq: int
    entry_id: int
    reason: str


@dataclass(frozen=True)
class ChainReport:
    entity_type: str
    entity_id: str
    entries: int
    first_broken: BrokenLink | None

    @property
    def valid(self) -> bool:
        return self.first_broken is None


def verify_chain(
    entity_type: str, entity_id: str, entries: Iterable[Mapping[str, Any]]
) -> ChainReport:
    """Recompute the chain of ``entries`` (in ``seq`` order) and find the first break.

    Each entry must carry ``id``, ``seq``, ``prev_hash`` and ``hash`` besides
    the hashed fields. Checks, in order: no gap in ``seq`` (an entry removed),
    ``prev_hash`` equal to the previous entry's stored hash, and the stored
    hash equal to the recomputed one (an entry edited).
    """
    count = 0
    previous_hash: str | None = None
    for entry in entries:
        count += 1
        problem = _link_problem(entry, count, previous_hash)
        if problem is not None:
            broken = BrokenLink(seq=entry["seq"], entry_id=entry["id"], reason=problem)
            return ChainReport(entity_type, entity_id, count, broken)
        previous_hash = entry["hash"]
    return ChainReport(entity_type, entity_id, count, None)


def _link_problem(
    entry: Mapping[str, Any], expected_seq: int, previous_hash: str | None
) -> str | None:
    if entry["seq"] != expected_seq:
        return f"sequence gap: expected seq {expected_seq}, found {entry['seq']}"
    if entry["prev_hash"] != previous_hash:
        return "prev_hash does not match the hash of the previous entry"
    if entry_hash(entry, entry["prev_hash"]) != entry["hash"]:
        return "hash does not match the entry's contents"
    return None
