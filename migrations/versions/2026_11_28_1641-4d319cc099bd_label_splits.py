"""prompt labels: traffic splits over several versions

Revision ID: 4d319cc099bd
Revises: 1f97dfe9eb59
Create Date: 2026-11-28 16:41:52.294648
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "4d319cc099bd"
down_revision: str | None = "1f97dfe9eb59"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "prompt_label_moves",
        sa.Column("to_split", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column(
        "prompt_labels", sa.Column("split", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("prompt_labels", "split")
    op.drop_column("prompt_label_moves", "to_split")
