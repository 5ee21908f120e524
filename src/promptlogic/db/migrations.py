"""Alembic, driven from code: upgrade to head and check that a database is at head."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

_PACKAGE = Path(__file__).resolve().parent.parent


class SchemaBehind(RuntimeError):
    """The database is not at the newest migration; the app must not serve it."""


def migrations_dir() -> Path:
    """Migrations ship inside the wheel; in a source checkout they sit at the repository root."""
    packaged = _PACKAGE / "migrations"
    if packaged.is_dir():
        return packaged
    return _PACKAGE.parent.parent / "migrations"


def alembic_config(database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    if database_url:
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade the database behind `engine` to `revision`."""
    await _run(engine, lambda config: command.upgrade(config, revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    await _run(engine, lambda config: command.downgrade(config, revision))


async def _run(engine: AsyncEngine, operation: Callable[[Config], None]) -> None:
    def in_connection(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        operation(config)

    async with engine.begin() as connection:
        await connection.run_sync(in_connection)


async def ensure_at_head(engine: AsyncEngine) -> None:
    """Refuse a database whose schema is not at head, saying how to fix it."""
    async with engine.connect() as connection:
        current = await connection.run_sync(current_revision)
    head = head_revision()
    if current != head:
        found = f"at revision {current}" if current else "empty (never migrated)"
        raise SchemaBehind(
            f"The database schema is {found}, but this version of promptlogic needs revision "
            f"{head}. Run `promptlogic migrate` first."
        )
