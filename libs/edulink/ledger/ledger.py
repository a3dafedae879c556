"""A service's ledger: record events in the business transaction, append them in a job.

:meth:`Ledger.record_event` only enqueues a ``ledger.append`` job, so the
request pays for one insert and never waits on the entity's chain. The job
takes a transaction-scoped advisory lock on the entity, reads the chain's
last entry and appends the next one. Appends to one entity therefore run one
at a time, and the unique ``(entity_type, entity_id, seq)`` constraint stops a
fork even if the lock were bypassed. An event id already in the table makes
the append a no-op, so a job that runs twice appends once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pydantic
import sqlalchemy as sa
from pydantic_core import to_jsonable_python
from sqlalchemy.orm import Session

from edulink.jobs import Job, JobContext, JobContract, JobRegistry, Queue, Retry
from edulink.ledger.chain import ChainReport, entry_hash, verify_chain
from edulink.ledger.tables import DEFAULT_TABLE_NAME, ledger_table
from edulink.logs import actor_var, request_id_var


class LedgerAppend(pydantic.BaseModel):
    """Payload of ``ledger.append``: one event about one entity."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    event_id: uuid.UUID
    entity_type: str = pydantic.Field(min_length=1, max_length=100)
    entity_id: str = pydantic.Field(min_length=1, max_length=200)
    event_type: str = pydantic.Field(min_length=1, max_length=200)
    actor: str = pydantic.Field(min_length=1, max_length=200)
    old: pydantic.JsonValue = None
    new: pydantic.JsonValue = None
    occurred_at: pydantic.AwareDatetime
    request_id: str | None = None


LEDGER_APPEND = JobContract(
    name="ledger.append",
    version=1,
    payload=LedgerAppend,
    consumer=None,
    # Appends fail only when the database does; keep trying for about an hour.
    retry=Retry(max=15),
    # The unique event id already makes a repeated append a no-op.
    run_once=False,
)


class Ledger:
    """The event log of one service, in a table of the service's own schema."""

    def __init__(
        self, metadata: sa.MetaData, *, queue: str, table_name: str = DEFAULT_TABLE_NAME
    ) -> None:
        self.table = ledger_table(metadata, table_name)
        self.queue = queue

    def record_event(
        self,
        session: Session,
        *,
        entity_type: str,
        entity_id: str | uuid.UUID,
        event_type: str,
        actor: str | None = None,
        old: Any = None,
        new: Any = None,
    ) -> Job:
        """Enqueue the append of one event in the session's transaction.

        ``actor`` defaults to the request's authenticated subject. ``old`` and
        ``new`` may hold anything pydantic can turn into JSON (UUIDs and
        datetimes become strings).
        """
        actor = actor or actor_var.get()
        if not actor:
            raise ValueError("record_event needs an actor: a user id, or 'system'")
        payload = LedgerAppend(
            event_id=uuid.uuid4(),
            entity_type=entity_type,
            entity_id=str(entity_id),
            event_type=event_type,
            actor=actor,
            old=to_jsonable_python(old),
            new=to_jsonable_python(new),
            occurred_at=datetime.now(UTC),
            request_id=request_id_var.get(),
        )
        return Queue(self.queue, session=session).enqueue_call(
            LEDGER_APPEND, args=(payload,), job_id=f"ledger-{payload.event_id.hex}"
        )

    def register_jobs(self, registry: JobRegistry) -> None:
        """Let ``registry``'s worker run this ledger's ``ledger.append`` jobs."""
        if registry.queue != self.queue:
            raise ValueError(
                f"this ledger records on queue {self.queue!r}, not {registry.queue!r}"
            )
        # NOTE: appends run in parallel threads, so two events of one entity
        # can be chained in the opposite order to their occurred_at. A limit
        # of one append at a time kept the order but cut appends to about 10
        # a second, because pgqueuer waits before it picks the next one.
        registry.register(LEDGER_APPEND, self._handle_append)

    def _handle_append(self, payload: LedgerAppend, context: JobContext) -> None:
        self.append(context.session, payload)

    def append(self, session: Session, event: LedgerAppend) -> bool:
        """Append ``event`` to its entity's chain; False if it is there already."""
        table = self.table
        lock_key = f"{table.fullname}:{event.entity_type}:{event.entity_id}"
        session.execute(
            sa.select(
                sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(lock_key, 0))
            )
        )

        same_entity = sa.and_(
            table.c.entity_type == event.entity_type,
            table.c.entity_id == event.entity_id,
        )
        last = (
            sa.select(table.c.seq, table.c.hash)
            .where(same_entity)
            .order_by(table.c.seq.desc())
            .limit(1)
            .subquery()
        )
        state = session.execute(
            sa.select(
                sa.exists().where(table.c.event_id == event.event_id).label("seen"),
                sa.select(last.c.seq).scalar_subquery().label("seq"),
                sa.select(last.c.hash).scalar_subquery().label("hash"),
            )
        ).one()
        if state.seen:
            return False

        entry = event.model_dump()
        entry.update(seq=(state.seq or 0) + 1, recorded_at=datetime.now(UTC))
        entry["hash"] = entry_hash(entry, state.hash)
        entry["prev_hash"] = state.hash
        session.execute(sa.insert(table).values(**entry))
        return True

    def verify(self, session: Session, entity_type: str, entity_id: str) -> ChainReport:
        """Recompute one entity's chain and report its first broken link."""
        return verify_chain(
            entity_type, entity_id, self._chain(session, entity_type, entity_id)
        )

    def _chain(
        self, session: Session, entity_type: str, entity_id: str
    ) -> Iterator[dict[str, Any]]:
        table = self.table
        statement = (
            sa.select(table)
            .where(table.c.entity_type == entity_type, table.c.entity_id == entity_id)
            .order_by(table.c.seq)
            .execution_options(yield_per=500)
        )
        for row in session.execute(statement).mappings():
            yield dict(row)
