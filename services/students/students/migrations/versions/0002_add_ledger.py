"""add the ledger table

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 17:00:00
"""

import sqlalchemy as sa
from alembic import op

from edulink.ledger import ledger_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Creating the table through edulink.ledger also installs its append-only
    # trigger, which rejects UPDATE and DELETE on entries.
    table = ledger_table(sa.MetaData(schema="students"))
    table.create(op.get_bind())


def downgrade() -> None:
    op.drop_table("ledger_entries", schema="students")
    op.execute('DROP FUNCTION IF EXISTS "students"."ledger_entries_reject_change"()')
