"""Queue health: backlog, age of the oldest waiting job and failures per job type."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from edulink.jobs.schema import QUEUE_TABLE

# A running job whose heartbeat is older than this many seconds is reported as
# stalled: its worker probably died and another will take it over.
DEFAULT_STALL_SECONDS = 60.0

_HEALTH = sa.text(
    f"""
    SELECT
        split_part(entrypoint, ':', 1) AS queue,
        split_part(entrypoint, ':', 2) AS name,
        count(*) FILTER (WHERE status = 'queued' AND execute_after <= now()) AS queued,
        count(*) FILTER (WHERE status = 'queued' AND execute_after > now()) AS deferred,
        count(*) FILTER (WHERE status = 'picked') AS started,
        count(*) FILTER (
            WHERE status = 'picked'
              AND heartbeat < now() - make_interval(secs => :stall_seconds)
        ) AS stalled,
        count(*) FILTER (WHERE status = 'failed') AS failed,
        EXTRACT(EPOCH FROM now() - min(execute_after) FILTER (
            WHERE status = 'queued' AND execute_after <= now()
        ))::float AS oldest_queued_seconds
    FROM {QUEUE_TABLE}
    WHERE CAST(:queue AS text) IS NULL OR entrypoint LIKE CAST(:queue AS text) || ':%'
    GROUP BY entrypoint
    ORDER BY entrypoint
    """
)


@dataclass(frozen=True)
class JobTypeHealth:
    """Counts for one job type on one queue.

    ``queued`` jobs may start now, ``deferred`` ones wait for their start time
    (``enqueue_in``, ``enqueue_at`` or a retry's backoff). The oldest queued
    age counts from the moment a job could start, not from its enqueue.
    """

    queue: str
    name: str
    queued: int
    deferred: int
    started: int
    stalled: int
    failed: int
    oldest_queued_seconds: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def queue_health(
    session: Session,
    *,
    queue: str | None = None,
    stall_seconds: float = DEFAULT_STALL_SECONDS,
) -> list[JobTypeHealth]:
    """Return one entry per job type with jobs in the queue, for ``queue`` or all."""
    rows = session.execute(_HEALTH, {"queue": queue, "stall_seconds": stall_seconds})
    return [JobTypeHealth(**row._mapping) for row in rows]


def summarize(entries: list[JobTypeHealth]) -> dict[str, Any]:
    """Totals over ``entries``, with the oldest queued age among them."""
    ages = [
        e.oldest_queued_seconds for e in entries if e.oldest_queued_seconds is not None
    ]
    return {
        "queued": sum(entry.queued for entry in entries),
        "deferred": sum(entry.deferred for entry in entries),
        "started": sum(entry.started for entry in entries),
        "stalled": sum(entry.stalled for entry in entries),
        "failed": sum(entry.failed for entry in entries),
        "oldest_queued_seconds": max(ages) if ages else None,
    }
