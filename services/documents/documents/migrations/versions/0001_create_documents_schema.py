"""create documents schema

Revision ID: 0001
Revises:
Create Date: 2026-12-04 16:29:43.507596
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from edulink.ledger import ledger_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("format", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("tracking_code", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("holder_name", sa.Text(), nullable=False),
        sa.Column("subject_key", sa.Text(), nullable=False),
        sa.Column("application_id", sa.Uuid(), nullable=True),
        sa.Column("student_user_id", sa.Uuid(), nullable=True),
        sa.Column("employer_id", sa.Uuid(), nullable=True),
        sa.Column("institution_id", sa.Uuid(), nullable=True),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("period_end", sa.Date(), nullable=True),
        sa.Column("source", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("source_hash", sa.String(length=64), nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("notify_user_id", sa.Uuid(), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("content_sha256", sa.String(length=64), nullable=True),
        sa.Column("content_size", sa.Integer(), nullable=True),
        sa.Column("media_type", sa.Text(), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("render_ms", sa.Integer(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.Text(), nullable=True),
        sa.Column("revocation_reason", sa.Text(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "(status = 'FAILED') = (failure_reason IS NOT NULL)",
            name=op.f("ck_documents_failed_has_reason"),
        ),
        sa.CheckConstraint(
            "(status = 'READY') = (content IS NOT NULL AND content_sha256 IS NOT NULL)",
            name=op.f("ck_documents_ready_has_content"),
        ),
        sa.CheckConstraint(
            "format IN ('pdf', 'csv')", name=op.f("ck_documents_format")
        ),
        sa.CheckConstraint(
            "kind IN ('placement_letter', 'completion_certificate', 'performance_summary', 'placement_report')",
            name=op.f("ck_documents_kind"),
        ),
        sa.CheckConstraint(
            "revoked_at IS NULL OR status = 'READY'",
            name=op.f("ck_documents_only_ready_revoked"),
        ),
        sa.CheckConstraint(
            "status IN ('PENDING', 'PROCESSING', 'READY', 'FAILED')",
            name=op.f("ck_documents_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
        sa.UniqueConstraint("tracking_code", name=op.f("uq_documents_tracking_code")),
        schema="documents",
    )
    op.create_index(
        "ix_documents_application_id",
        "documents",
        ["application_id"],
        unique=False,
        schema="documents",
    )
    op.create_index(
        "ix_documents_content_sha256",
        "documents",
        ["content_sha256"],
        unique=False,
        schema="documents",
    )
    op.create_index(
        "ix_documents_created_at_id",
        "documents",
        ["created_at", "id"],
        unique=False,
        schema="documents",
    )
    op.create_index(
        "uq_documents_live_subject_source",
        "documents",
        ["subject_key", "source_hash"],
        unique=True,
        schema="documents",
        postgresql_where=sa.text("status <> 'FAILED' AND revoked_at IS NULL"),
    )
    # PDFs are compressed already, so PostgreSQL stores the bytes without
    # trying to compress them again.
    op.execute(
        "ALTER TABLE documents.documents ALTER COLUMN content SET STORAGE EXTERNAL"
    )
    # Creating the table through edulink.ledger also installs its append-only
    # trigger, which rejects UPDATE and DELETE on entries.
    ledger_table(sa.MetaData(schema="documents")).create(op.get_bind())


def downgrade() -> None:
    op.drop_table("ledger_entries", schema="documents")
    op.execute('DROP FUNCTION IF EXISTS "documents"."ledger_entries_reject_change"()')
    op.drop_index(
        "uq_documents_live_subject_source",
        table_name="documents",
        schema="documents",
        postgresql_where=sa.text("status <> 'FAILED' AND revoked_at IS NULL"),
    )
    op.drop_index(
        "ix_documents_created_at_id", table_name="documents", schema="documents"
    )
    op.drop_index(
        "ix_documents_content_sha256", table_name="documents", schema="documents"
    )
    op.drop_index(
        "ix_documents_application_id", table_name="documents", schema="documents"
    )
    op.drop_table("documents", schema="documents")
