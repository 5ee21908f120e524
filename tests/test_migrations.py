"""Migrations: upgrade from empty, downgrade, models in step, and the app's schema check."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from promptlogic.app import create_app
from promptlogic.db.engine import create_engine
from promptlogic.db.migrations import (
    SchemaBehind,
    alembic_config,
    downgrade,
    head_revision,
    upgrade,
)
from promptlogic.db.models import Base
from tests.conftest import make_settings, running


@pytest.fixture
async def empty_engine(pg):
    engine = create_engine(make_settings(await pg.create_database("migrations")))
    yield engine
    await engine.dispose()


async def _tables(engine) -> set[str]:
    async with engine.connect() as connection:
        return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))


async def _revision(engine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda c: MigrationContext.configure(c).get_current_revision()
        )


async def test_upgrade_from_empty_reaches_head_with_every_table(empty_engine):
    assert await _tables(empty_engine) == set()
    await upgrade(empty_engine)
    assert await _revision(empty_engine) == head_revision()
    assert {t.name for t in Base.metadata.sorted_tables} <= await _tables(empty_engine)


async def test_each_migration_downgrades_one_step_and_upgrades_again(empty_engine):
    await upgrade(empty_engine)
    scripts = ScriptDirectory.from_config(alembic_config())
    for script in scripts.walk_revisions():  # newest first
        await downgrade(empty_engine, "-1")
        assert await _revision(empty_engine) == script.down_revision
    assert await _tables(empty_engine) <= {"alembic_version"}
    await upgrade(empty_engine)
    assert await _revision(empty_engine) == head_revision()


async def test_models_and_migrations_describe_the_same_schema(database_url):
    engine = create_engine(make_settings(database_url))
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
            )
    finally:
        await engine.dispose()
    assert differences == [], "models changed without a migration: " + repr(differences)


async def test_app_refuses_to_start_on_a_schema_behind_head(pg):
    settings = make_settings(await pg.create_database("behind"))
    with pytest.raises(SchemaBehind, match="promptlogic migrate"):
        async with running(create_app(settings)):
            pass
