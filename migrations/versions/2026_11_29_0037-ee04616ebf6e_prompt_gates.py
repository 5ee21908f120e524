"""Promotion gates: what moving a label of a prompt needs (an eval on a dataset, a pass rate).

Revision ID: ee04616ebf6e
Revises: 566569afc8c2
Create Date: 2026-11-29 00:37:41.145334
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "ee04616ebf6e"
down_revision: str | None = "566569afc8c2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prompt_gates",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("prompt_id", sa.UUID(), nullable=False),
        sa.Column("label", sa.String(length=50), nullable=False),
        sa.Column("dataset_id", sa.UUID(), nullable=False),
        sa.Column("evaluators", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("min_pass_rate", sa.Float(), nullable=False),
        sa.Column("no_regressions", sa.Boolean(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by", sa.String(length=300), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.CheckConstraint(
            "min_pass_rate BETWEEN 0 AND 1", name=op.f("ck_prompt_gates_min_pass_rate_range")
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_prompt_gates_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["prompt_id"],
            ["prompts.id"],
            name=op.f("fk_prompt_gates_prompt_id_prompts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_prompt_gates_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompt_gates")),
        sa.UniqueConstraint("prompt_id", "label", name="uq_prompt_gates_prompt_label"),
    )


def downgrade() -> None:
    op.drop_table("prompt_gates")
