"""Runs keep what their context bindings bound (record keys and versions, chunk ids).

Revision ID: d3f7a2e6c914
Revises: 847d68ec34a0
Create Date: 2026-11-28 19:46:04.249934
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "d3f7a2e6c914"
down_revision: str | None = "847d68ec34a0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "runs",
        sa.Column(
            "bound",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_column("runs", "bound")
