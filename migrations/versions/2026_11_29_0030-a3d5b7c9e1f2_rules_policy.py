"""The admins' policy on tenant rules, per prompt: a JSON column, null for the defaults.

Revision ID: a3d5b7c9e1f2
Revises: e916fe493d37
Create Date: 2026-11-29 00:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "a3d5b7c9e1f2"
down_revision: str | None = "e916fe493d37"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "prompts",
        sa.Column("rules_policy", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("prompts", "rules_policy")
