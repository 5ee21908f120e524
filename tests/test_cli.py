"""The `promptlogic` command, end to end against the test database.

The CLI calls `asyncio.run` itself, which cannot run inside pytest-asyncio's (session) event
loop. Tests that only look at the CLI are plain functions; tests that also look at the database
or at the running app (the `app` fixture lives on the session loop) are async and run the CLI in
a worker thread, so the loop keeps serving the app, and its NOTIFY listener, meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result
from fastapi import FastAPI
from sqlalchemy import RowMapping, text
from typer.testing import CliRunner

from promptlogic import cli
from promptlogic.tenancy.passwords import verify_password
from tests.conftest import TEST_SECRET
from tests.helpers import assert_problem

PASSWORD = "correct-horse-battery"

runner = CliRunner()


@pytest.fixture(autouse=True)
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> None:
    """Only the test database and secret configure the CLI; no stray `.env` is read."""
    for name in list(os.environ):
        if name.startswith("PROMPTLOGIC_") and not name.startswith("PROMPTLOGIC_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PROMPTLOGIC_DATABASE_URL", database_url)
    monkeypatch.setenv("PROMPTLOGIC_SECRET_KEY", TEST_SECRET)
    monkeypatch.chdir(tmp_path)


def invoke(command: str, *extra: str) -> Result:
    """Run `promptlogic <command> <extra...>` in-process (`command` is split like a shell)."""
    return runner.invoke(cli.app, [*shlex.split(command), *extra])


async def run_cli(command: str, *extra: str) -> Result:
    """`invoke` off the event loop, for async tests."""
    return await asyncio.to_thread(invoke, command, *extra)


def json_output(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def failed(result: Result) -> str:
    """Assert the CLI failed cleanly (exit 1, no traceback, nothing on stdout); return stderr."""
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.stdout == ""
    return result.stderr


async def fetch(app: FastAPI, sql: str, **params: object) -> list[RowMapping]:
    async with app.state.engine.connect() as connection:
        return list((await connection.execute(text(sql), params)).mappings())


async def count(app: FastAPI, table: str) -> int:
    return (await fetch(app, f"SELECT count(*) AS n FROM {table}"))[0]["n"]  # noqa: S608


async def create_tenant(slug: str) -> dict[str, Any]:
    return json_output(
        await run_cli(
            f"tenants create {slug} --name 'Tenant {slug}' --admin-email owner@{slug}.test "
            f"--admin-password {PASSWORD} --json"
        )
    )


async def create_key(tenant: str, scopes: str = "run,read", *extra: str) -> dict[str, Any]:
    return json_output(
        await run_cli(
            f"keys create --tenant {tenant} --name checkout --scopes {scopes} --json", *extra
        )
    )


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# The command


def test_help_lists_the_commands() -> None:
    result = invoke("--help")
    assert result.exit_code == 0, result.output
    for command in ("serve", "migrate", "tenants", "keys", "users"):
        assert command in result.stdout


def test_migrate_on_a_migrated_database_succeeds() -> None:
    result = invoke("migrate")
    assert result.exit_code == 0, result.output
    assert "database is at head" in result.stdout


@pytest.mark.parametrize(
    "command",
    [
        "migrate",
        "tenants list",
        "tenants create acme --name Acme --admin-email a@acme.test",
        "keys create --tenant acme --name k",
        "keys revoke 00000000-0000-0000-0000-000000000000",
        "users create --tenant acme --email a@acme.test --role viewer",
    ],
)
def test_data_commands_without_a_secret_key_fail_naming_it(
    monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    monkeypatch.delenv("PROMPTLOGIC_SECRET_KEY")
    assert "PROMPTLOGIC_SECRET_KEY" in failed(invoke(command))


def test_an_unreachable_database_fails_with_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "PROMPTLOGIC_DATABASE_URL", "postgresql+asyncpg://u:hunter2-secret@127.0.0.1:1/none"
    )
    message = failed(invoke("tenants list"))
    assert "cannot reach the database" in message
    assert "hunter2-secret" not in message


# Tenants


async def test_tenants_create_prints_the_tenant_and_a_working_admin_key(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    created = await create_tenant("acme")

    assert set(created) == {"tenant", "admin_email", "api_key"}
    (tenant,) = await fetch(app, "SELECT id, slug, name FROM tenants")
    assert created["tenant"] == {"id": str(tenant["id"]), "slug": "acme", "name": "Tenant acme"}
    assert created["admin_email"] == "owner@acme.test"
    assert created["api_key"].startswith("pl_")
    me = await client.get("/v1/me", headers=bearer(created["api_key"]))
    assert me.status_code == 200, me.text
    assert me.json()["tenant"] == created["tenant"]
    assert "admin" in me.json()["scopes"]
    keys = await client.get("/v1/api-keys", headers=bearer(created["api_key"]))
    assert keys.status_code == 200, keys.text


async def test_tenants_create_records_the_owner_and_the_audit_trail(
    app: FastAPI, clean: None
) -> None:
    created = json_output(
        await run_cli(
            f"tenants create acme --name Acme --admin-email '  Owner@ACME.test '"
            f" --admin-password {PASSWORD} --json"
        )
    )

    assert created["admin_email"] == "owner@acme.test"
    assert "admin_password" not in created
    (member,) = await fetch(
        app,
        "SELECT u.email, u.password_hash, m.role, m.tenant_id FROM memberships m "
        "JOIN users u ON u.id = m.user_id",
    )
    assert member["email"] == "owner@acme.test"
    assert member["role"] == "owner"
    assert str(member["tenant_id"]) == created["tenant"]["id"]
    assert verify_password(member["password_hash"], PASSWORD)
    events = await fetch(
        app, "SELECT actor_type, tenant_id FROM audit_events WHERE action = 'tenant.create'"
    )
    assert [(e["actor_type"], str(e["tenant_id"])) for e in events] == [
        ("operator", created["tenant"]["id"])
    ]


async def test_tenants_create_without_a_password_prints_a_generated_one(
    app: FastAPI, clean: None
) -> None:
    created = json_output(
        await run_cli("tenants create acme --name Acme --admin-email owner@acme.test --json")
    )

    password = created["admin_password"]
    assert len(password) >= 12
    (user,) = await fetch(app, "SELECT password_hash FROM users WHERE email = 'owner@acme.test'")
    assert verify_password(user["password_hash"], password)


async def test_tenants_create_prints_text_without_json(clean: None) -> None:
    result = await run_cli("tenants create acme --name Acme --admin-email owner@acme.test")

    assert result.exit_code == 0, result.output
    assert "created tenant acme" in result.stdout
    assert "owner@acme.test (password: " in result.stdout
    assert "API key: pl_" in result.stdout


async def test_tenants_create_with_a_taken_slug_fails_and_creates_nothing(
    app: FastAPI, clean: None
) -> None:
    await create_tenant("acme")
    tables = ("tenants", "users", "memberships", "api_keys", "audit_events")
    before = {table: await count(app, table) for table in tables}

    result = await run_cli("tenants create acme --name Other --admin-email someone@else.test")

    assert "acme" in failed(result)
    assert {table: await count(app, table) for table in tables} == before
    assert before["tenants"] == before["users"] == before["api_keys"] == 1


async def test_tenants_create_rejects_an_invalid_slug(app: FastAPI, clean: None) -> None:
    result = await run_cli("tenants create 'Bad Slug!' --name Bad --admin-email owner@bad.test")

    assert "slug" in failed(result)
    assert await count(app, "tenants") == 0


async def test_tenants_create_rejects_an_invalid_email_and_keeps_no_tenant(
    app: FastAPI, clean: None
) -> None:
    result = await run_cli("tenants create acme --name Acme --admin-email not-an-email")

    assert "email" in failed(result)
    for table in ("tenants", "users", "api_keys", "audit_events"):
        assert await count(app, table) == 0, table


async def test_tenants_list_shows_every_tenant(clean: None) -> None:
    assert json_output(await run_cli("tenants list --json")) == []
    beta = (await create_tenant("beta"))["tenant"]
    acme = (await create_tenant("acme"))["tenant"]

    listed = json_output(await run_cli("tenants list --json"))
    assert [{k: t[k] for k in ("id", "slug", "name")} for t in listed] == [acme, beta]
    assert all(datetime.fromisoformat(t["created_at"]).tzinfo for t in listed)

    result = await run_cli("tenants list")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"acme\tTenant acme\t{acme['id']}",
        f"beta\tTenant beta\t{beta['id']}",
    ]


# Keys


async def test_keys_create_makes_a_key_with_exactly_those_scopes(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    tenant = await create_tenant("acme")

    created = await create_key("acme", "run,read")

    assert created["api_key"].startswith("pl_")
    me = await client.get("/v1/me", headers=bearer(created["api_key"]))
    assert me.status_code == 200, me.text
    assert me.json() == {
        "tenant": tenant["tenant"],
        "key": {"id": created["id"], "name": "checkout"},
        "scopes": ["run", "read"],
    }
    assert_problem(await client.get("/v1/api-keys", headers=bearer(created["api_key"])), 403)
    (row,) = await fetch(app, "SELECT created_by FROM api_keys WHERE id = :id", id=created["id"])
    assert row["created_by"] == "promptlogic cli"


async def test_keys_create_for_an_unknown_tenant_fails(app: FastAPI, clean: None) -> None:
    result = await run_cli("keys create --tenant nope --name k --json")

    assert "nope" in failed(result)
    assert await count(app, "api_keys") == 0


async def test_keys_create_with_an_unknown_scope_fails(app: FastAPI, clean: None) -> None:
    await create_tenant("acme")

    result = await run_cli("keys create --tenant acme --name k --scopes run,god")

    assert result.exit_code != 0
    assert "run, read, rules, write, admin" in result.output
    assert await count(app, "api_keys") == 1  # only the tenant's admin key


async def test_keys_create_keeps_the_expiry_reading_a_bare_time_as_utc(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await create_tenant("acme")

    created = await create_key("acme", "read", "--expires-at", "2099-01-02T03:04:05")

    (row,) = await fetch(app, "SELECT expires_at FROM api_keys WHERE id = :id", id=created["id"])
    assert row["expires_at"] == datetime(2099, 1, 2, 3, 4, 5, tzinfo=UTC)
    me = await client.get("/v1/me", headers=bearer(created["api_key"]))
    assert me.status_code == 200, me.text


async def test_keys_create_refuses_an_expiry_in_the_past(app: FastAPI, clean: None) -> None:
    await create_tenant("acme")

    result = await run_cli("keys create --tenant acme --name k --expires-at 2000-01-01T00:00:00")

    assert "future" in failed(result)
    assert await count(app, "api_keys") == 1


@pytest.mark.parametrize("name", ["   ", "x" * 101], ids=["blank", "overlong"])
async def test_keys_create_rejects_a_blank_or_overlong_name(
    app: FastAPI, clean: None, name: str
) -> None:
    await create_tenant("acme")

    result = await run_cli("keys create --tenant acme --name", name)

    assert "name" in failed(result)
    assert await count(app, "api_keys") == 1


async def test_keys_revoke_stops_the_key_in_the_running_app(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await create_tenant("acme")
    created = await create_key("acme")
    headers = bearer(created["api_key"])
    assert (await client.get("/v1/me", headers=headers)).status_code == 200  # now cached

    revoked = json_output(await run_cli(f"keys revoke {created['id']} --json"))

    assert revoked["id"] == created["id"]
    assert revoked["revoked_at"]
    deadline = time.monotonic() + 2
    status = 200
    while status != 401 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        status = (await client.get("/v1/me", headers=headers)).status_code
    assert status == 401
    events = await fetch(app, "SELECT target_id FROM audit_events WHERE action = 'api_key.revoke'")
    assert [e["target_id"] for e in events] == [created["id"]]


async def test_keys_revoke_of_an_unknown_id_fails(clean: None) -> None:
    unknown = str(uuid.uuid4())
    assert unknown in failed(await run_cli(f"keys revoke {unknown}"))


def test_keys_revoke_of_a_malformed_id_fails() -> None:
    assert "not a key id" in failed(invoke("keys revoke not-a-uuid"))


# Users


async def test_users_create_adds_a_member_with_the_role(app: FastAPI, clean: None) -> None:
    tenant = await create_tenant("acme")

    created = json_output(
        await run_cli(
            f"users create --tenant acme --email Ed@Acme.test --role editor"
            f" --password {PASSWORD} --json"
        )
    )

    assert {k: v for k, v in created.items() if k != "id"} == {
        "email": "ed@acme.test",
        "tenant": "acme",
        "role": "editor",
    }
    (member,) = await fetch(
        app,
        "SELECT u.id, u.password_hash, m.role, m.tenant_id FROM memberships m "
        "JOIN users u ON u.id = m.user_id WHERE u.email = 'ed@acme.test'",
    )
    assert str(member["id"]) == created["id"]
    assert member["role"] == "editor"
    assert str(member["tenant_id"]) == tenant["tenant"]["id"]
    assert verify_password(member["password_hash"], PASSWORD)


async def test_users_create_without_a_password_prints_a_generated_one(
    app: FastAPI, clean: None
) -> None:
    await create_tenant("acme")

    created = json_output(
        await run_cli("users create --tenant acme --email v@acme.test --role viewer --json")
    )

    (user,) = await fetch(app, "SELECT password_hash FROM users WHERE email = 'v@acme.test'")
    assert verify_password(user["password_hash"], created["password"])


def test_users_create_rejects_an_unknown_role() -> None:
    result = invoke("users create --tenant acme --email a@acme.test --role god")

    assert result.exit_code != 0
    assert "rule_author" in result.output


async def test_users_create_twice_in_one_tenant_conflicts(app: FastAPI, clean: None) -> None:
    await create_tenant("acme")
    first = await run_cli("users create --tenant acme --email ed@acme.test --role editor")
    assert first.exit_code == 0, first.output

    result = await run_cli("users create --tenant acme --email ed@acme.test --role viewer")

    assert "ed@acme.test" in failed(result)
    rows = await fetch(
        app,
        "SELECT m.role FROM memberships m JOIN users u ON u.id = m.user_id "
        "WHERE u.email = 'ed@acme.test'",
    )
    assert [r["role"] for r in rows] == ["editor"]


async def test_users_create_adds_one_user_to_a_second_tenant(app: FastAPI, clean: None) -> None:
    await create_tenant("acme")
    await create_tenant("beta")
    first = json_output(
        await run_cli("users create --tenant acme --email ed@shared.test --role editor --json")
    )

    second = json_output(
        await run_cli("users create --tenant beta --email ed@shared.test --role viewer --json")
    )

    assert second["id"] == first["id"]
    rows = await fetch(
        app,
        "SELECT t.slug, m.role FROM memberships m JOIN tenants t ON t.id = m.tenant_id "
        "WHERE m.user_id = :id ORDER BY t.slug",
        id=first["id"],
    )
    assert [(r["slug"], r["role"]) for r in rows] == [("acme", "editor"), ("beta", "viewer")]


@pytest.mark.parametrize(
    "command",
    [
        "users create --tenant beta --email ed@shared.test --role viewer",
        "tenants create gamma --name Gamma --admin-email ed@shared.test",
    ],
    ids=["users create", "tenants create"],
)
async def test_adding_an_existing_user_keeps_their_password(
    app: FastAPI, clean: None, command: str
) -> None:
    await create_tenant("acme")
    await create_tenant("beta")
    await run_cli(
        f"users create --tenant acme --email ed@shared.test --role editor --password {PASSWORD}"
    )

    result = await run_cli(command)

    assert result.exit_code == 0, result.output
    (user,) = await fetch(app, "SELECT password_hash FROM users WHERE email = 'ed@shared.test'")
    assert verify_password(user["password_hash"], PASSWORD)


# The installed console script


async def test_console_script_creates_a_tenant_with_a_working_key(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    script = Path(sys.executable).parent / "promptlogic"
    process = await asyncio.create_subprocess_exec(
        script,
        *shlex.split("tenants create acme --name Acme --admin-email owner@acme.test --json"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ),
        cwd=tmp_path,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)

    assert process.returncode == 0, stderr.decode()
    created = json.loads(stdout)
    assert created["tenant"]["slug"] == "acme"
    assert created["admin_password"]
    me = await client.get("/v1/me", headers=bearer(created["api_key"]))
    assert me.status_code == 200, me.text
    assert me.json()["tenant"] == created["tenant"]
