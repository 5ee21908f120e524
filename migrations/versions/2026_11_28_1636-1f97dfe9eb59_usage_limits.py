"""usage limits: each tenant's limits and the request count of its current minute

Revision ID: 1f97dfe9eb59
Revises: 1c47b75392c5
Create Date: 2026-11-28 16:36:52.521621
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1f97dfe9eb59"
down_revision: str | None = "1c47b75392c5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_limits",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("requests_per_minute", sa.Integer(), nullable=True),
        sa.Column("monthly_spend_cap", sa.Numeric(precision=18, scale=6), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_usage_limits_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_usage_limits")),
    )
    op.create_table(
        "usage_rate_windows",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("granted", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_usage_rate_windows_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_usage_rate_windows")),
    )


def downgrade() -> None:
    op.drop_table("usage_rate_windows")
    op.drop_table("usage_limits")
