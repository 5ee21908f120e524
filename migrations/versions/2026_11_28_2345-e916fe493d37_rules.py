"""Tenant rules: each scoped to a prompt or a named rule set, with every revision kept.

Revision ID: e916fe493d37
Revises: f7c1e9a2b4d6
Create Date: 2026-11-28 23:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e916fe493d37"
down_revision: str | None = "f7c1e9a2b4d6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rules",
        sa.Column("prompt", sa.String(length=100), nullable=True),
        sa.Column("rule_set", sa.String(length=200), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("check_reason", sa.Text(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=300), nullable=False),
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
        sa.CheckConstraint(
            "(prompt IS NULL) <> (rule_set IS NULL)", name=op.f("ck_rules_one_scope")
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'enabled', 'disabled', 'rejected')", name=op.f("ck_rules_status")
        ),
        sa.CheckConstraint("revision >= 1", name=op.f("ck_rules_revision_positive")),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_rules_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rules")),
    )
    op.create_index(
        "ix_rules_tenant_id_prompt_priority",
        "rules",
        ["tenant_id", "prompt", "priority"],
        unique=False,
    )
    op.create_index(
        "ix_rules_tenant_id_rule_set_priority",
        "rules",
        ["tenant_id", "rule_set", "priority"],
        unique=False,
    )
    op.create_table(
        "rule_revisions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("rule_id", sa.UUID(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("check_reason", sa.Text(), nullable=True),
        sa.Column("author", sa.String(length=300), nullable=False),
        sa.Column(
            "at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["rules.id"],
            name=op.f("fk_rule_revisions_rule_id_rules"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_rule_revisions_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rule_revisions")),
        sa.UniqueConstraint("rule_id", "revision", name="uq_rule_revisions_rule_revision"),
    )


def downgrade() -> None:
    op.drop_table("rule_revisions")
    op.drop_index("ix_rules_tenant_id_rule_set_priority", table_name="rules")
    op.drop_index("ix_rules_tenant_id_prompt_priority", table_name="rules")
    op.drop_table("rules")
