"""Test databases on a real Postgres: the embedded one, or PROMPTLOGIC_TEST_DATABASE_URL's server.

Each test session creates its own databases (so runs never see each other's data) and drops
them at the end.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import asyncpg
from sqlalchemy import make_url

from promptlogic.db import embedded
from promptlogic.db.notify import asyncpg_dsn

EMBEDDED_DIR = Path(__file__).resolve().parent.parent / ".promptlogic" / "test-pgdata"


class TestServer:
    """A Postgres server on which tests may create and drop databases."""

    def __init__(self) -> None:
        external = os.environ.get("PROMPTLOGIC_TEST_DATABASE_URL")
        if external:
            url = make_url(external).set(drivername="postgresql+asyncpg")
            self._template_url = url.render_as_string(hide_password=False)
        else:
            server = embedded.start_server(EMBEDDED_DIR)
            self._template_url = embedded.asyncpg_url(server, "postgres")
        self.created: list[str] = []

    def url_for(self, name: str) -> str:
        return make_url(self._template_url).set(database=name).render_as_string(hide_password=False)

    @property
    def maintenance_dsn(self) -> str:
        return asyncpg_dsn(self.url_for("postgres"))

    async def create_database(self, label: str) -> str:
        name = f"pl_test_{label}_{secrets.token_hex(4)}"
        connection = await asyncpg.connect(self.maintenance_dsn)
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        self.created.append(name)
        return self.url_for(name)

    async def execute(self, sql: str, *args: object) -> None:
        """Run `sql` on the server's maintenance database, with `$1`-style arguments."""
        connection = await asyncpg.connect(self.maintenance_dsn)
        try:
            await connection.execute(sql, *args)
        finally:
            await connection.close()

    async def drop_created(self) -> None:
        for name in self.created:
            await self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
