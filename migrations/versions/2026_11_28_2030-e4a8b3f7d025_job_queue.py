"""Job queue: PgQueuer's tables, status type and NOTIFY trigger in a `pgqueuer` schema.

The DDL is PgQueuer's own, rendered by the version pyproject.toml pins (>=1.6,<1.7), so the
tables are exactly what that version's worker checks for. Multi-statement DDL with a function
body, so it goes to the driver's connection as one script.

Revision ID: e4a8b3f7d025
Revises: c2e6f1d5b803
Create Date: 2026-11-28 20:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.util import await_only

from promptlogic.jobs.queue import install_sql, uninstall_sql

revision: str = "e4a8b3f7d025"
down_revision: str | None = "c2e6f1d5b803"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _run_script(sql: str) -> None:
    if context.is_offline_mode():
        op.execute(sa.text(sql))
        return
    driver_connection = op.get_bind().connection.driver_connection  # asyncpg: multi-statement
    await_only(driver_connection.execute(sql))


def upgrade() -> None:
    _run_script(install_sql())


def downgrade() -> None:
    _run_script(uninstall_sql())
