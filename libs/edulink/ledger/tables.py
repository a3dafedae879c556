"""The ledger table a service adds to its own MetaData, and its append-only trigger."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSON
from sqlalchemy.sql.elements import conv

DEFAULT_TABLE_NAME = "ledger_entries"


def ledger_table(metadata: sa.MetaData, name: str = DEFAULT_TABLE_NAME) -> sa.Table:
    """Add the ledger table to ``metadata``, in the metadata's schema.

    ``old`` and ``new`` are ``json``, not ``jsonb``: ``json`` keeps the stored
    text as written, so the values read back are the ones that were hashed.
    """
    # conv() fixes each constraint name, so the table is the same whatever the
    # naming convention of the MetaData it is added to.
    table = sa.Table(
        name,
        metadata,
        sa.Column("id", sa.BigInteger, sa.Identity()),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("entity_type", sa.Text, nullable=False),
        sa.Column("entity_id", sa.Text, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("old", JSON(none_as_null=True)),
        sa.Column("new", JSON(none_as_null=True)),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.Text),
        sa.Column("prev_hash", sa.String(64)),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=conv(f"pk_{name}")),
        sa.UniqueConstraint("event_id", name=conv(f"uq_{name}_event_id")),
        sa.UniqueConstraint(
            "entity_type", "entity_id", "seq", name=conv(f"uq_{name}_entity_seq")
        ),
        sa.CheckConstraint("seq >= 1", name=conv(f"ck_{name}_seq_positive")),
        sa.CheckConstraint(
            "(seq = 1) = (prev_hash IS NULL)", name=conv(f"ck_{name}_first_has_no_prev")
        ),
        sa.Index(f"ix_{name}_event_type_id", "event_type", "id"),
        sa.Index(f"ix_{name}_occurred_at", "occurred_at"),
    )
    for statement in append_only_ddl(table):
        # DDL applies %-formatting to its text, which the RAISE format uses.
        sa.event.listen(table, "after_create", sa.DDL(statement.replace("%", "%%")))
    return table


def append_only_ddl(table: sa.Table) -> list[str]:
    """Return the SQL that makes ``table`` reject UPDATE and DELETE.

    ``metadata.create_all`` runs it on its own. An Alembic migration that
    creates the table must run it too: ``for s in append_only_ddl(t): op.execute(s)``.
    TRUNCATE stays allowed so test fixtures can empty the table; the
    superuser can also disable triggers, which is why chains are verifiable.
    """
    schema = table.schema or "public"
    function = f'"{schema}"."{table.name}_reject_change"'
    qualified = f'"{schema}"."{table.name}"'
    return [
        f"""
        CREATE OR REPLACE FUNCTION {function}() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'ledger entries are append-only: % on %.% is not allowed',
                TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """,
        f"""
        CREATE OR REPLACE TRIGGER "{table.name}_append_only"
        BEFORE UPDATE OR DELETE ON {qualified}
        FOR EACH ROW EXECUTE FUNCTION {function}()
        """,
    ]
