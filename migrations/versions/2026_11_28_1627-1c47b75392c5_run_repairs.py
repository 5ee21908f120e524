"""runs: the repaired flag

Revision ID: 1c47b75392c5
Revises: ef47ef0b929f
Create Date: 2026-11-28 16:27:08.016100
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1c47b75392c5"
down_revision: str | None = "ef47ef0b929f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "runs", sa.Column("repaired", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )


def downgrade() -> None:
    op.drop_column("runs", "repaired")
