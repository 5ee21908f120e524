"""Eval datasets and their cases, versioned: case rows are added and closed, never updated.

Revision ID: 5d6dfddee4d5
Revises: a3d5b7c9e1f2
Create Date: 2026-11-29 00:27:06.583994
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "5d6dfddee4d5"
down_revision: str | None = "a3d5b7c9e1f2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.CheckConstraint("revision >= 0", name=op.f("ck_datasets_revision_not_negative")),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_datasets_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("tenant_id", "name", name="uq_datasets_tenant_name"),
    )
    op.create_table(
        "dataset_cases",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("dataset_id", sa.UUID(), nullable=False),
        sa.Column("case_id", sa.UUID(), nullable=False),
        sa.Column("inputs", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("expected", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("tags", postgresql.ARRAY(sa.String(length=50)), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("source_run_id", sa.UUID(), nullable=True),
        sa.Column("added_revision", sa.Integer(), nullable=False),
        sa.Column("removed_revision", sa.Integer(), nullable=True),
        sa.Column("author", sa.String(length=300), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.CheckConstraint(
            "jsonb_typeof(inputs) = 'object'", name=op.f("ck_dataset_cases_inputs_is_object")
        ),
        sa.CheckConstraint(
            "removed_revision IS NULL OR removed_revision > added_revision",
            name=op.f("ck_dataset_cases_revisions"),
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_dataset_cases_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_dataset_cases_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_cases")),
    )
    op.create_index(
        "ix_dataset_cases_dataset_id_added_revision",
        "dataset_cases",
        ["dataset_id", "added_revision"],
        unique=False,
    )
    op.create_index(
        "ix_dataset_cases_dataset_id_case_id",
        "dataset_cases",
        ["dataset_id", "case_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_dataset_cases_dataset_id_case_id", table_name="dataset_cases")
    op.drop_index("ix_dataset_cases_dataset_id_added_revision", table_name="dataset_cases")
    op.drop_table("dataset_cases")
    op.drop_table("datasets")
