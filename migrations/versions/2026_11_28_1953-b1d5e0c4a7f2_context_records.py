"""Context records: a tenant's JSON objects under (namespace, key), with a version each.

Revision ID: b1d5e0c4a7f2
Revises: d3f7a2e6c914
Create Date: 2026-11-28 19:53:31.374048
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "b1d5e0c4a7f2"
down_revision: str | None = "d3f7a2e6c914"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "context_records",
        sa.Column("namespace", sa.String(length=100, collation="C"), nullable=False),
        sa.Column("key", sa.String(length=200, collation="C"), nullable=False),
        sa.Column("value", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by", sa.String(length=300), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.CheckConstraint(
            "jsonb_typeof(value) = 'object'", name=op.f("ck_context_records_value_is_object")
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_context_records_version_positive")),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_context_records_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "namespace", "key", name="pk_context_records"),
    )


def downgrade() -> None:
    op.drop_table("context_records")
