"""The API-key endpoints: create (shown once), list, revoke, scopes, validation, expiry, usage."""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from sqlalchemy import text

from promptlogic.app import create_app
from promptlogic.audit.service import OPERATOR
from promptlogic.db.engine import commit
from promptlogic.settings import Settings
from promptlogic.tenancy import service
from promptlogic.tenancy.auth import require_scope
from promptlogic.tenancy.roles import Scope
from tests.conftest import client_for, running
from tests.factories import make_key, make_tenant
from tests.helpers import (
    assert_names_field,
    assert_problem,
    assert_unauthorized,
    count_keys,
    cursor_of,
    only_page,
    walk_pages,
)

KEY_FORMAT = re.compile(r"^pl_[0-9a-f]{12}_[a-z2-7]{48}$")


async def key_row(session, key_id: uuid.UUID | str) -> dict[str, Any]:
    row = (
        await session.execute(text("SELECT * FROM api_keys WHERE id = :id"), {"id": str(key_id)})
    ).one()
    return dict(row._mapping)


async def list_all(client, headers, **params) -> list[dict[str, Any]]:
    return await only_page(client, "/v1/api-keys", headers, **params)


# A second worker, with test-only routes that need each scope, to observe what scopes imply.


async def _allowed() -> dict[str, bool]:
    return {"allowed": True}


@pytest.fixture(scope="module")
async def worker2(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    for scope in Scope:
        app.add_api_route(
            f"/test/needs-{scope.value}",
            _allowed,
            methods=["GET"],
            dependencies=[Depends(require_scope(scope))],
        )
    async with running(app):
        yield app


@pytest.fixture
async def worker2_client(worker2: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(worker2) as http:
        yield http


# Creating


async def test_creating_a_key_shows_it_once_with_no_store(client, session, admin):
    response = await client.post(
        "/v1/api-keys", headers=admin.headers, json={"name": "checkout", "scopes": ["run"]}
    )
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert KEY_FORMAT.match(body["api_key"]), body["api_key"]
    assert body["api_key"].startswith(f"pl_{body['prefix']}_")
    assert body["name"] == "checkout"
    assert body["scopes"] == ["run"]
    assert body["created_by"] == "deployer"
    assert body["expires_at"] is None
    assert body["revoked_at"] is None
    assert body["last_used_at"] is None
    row = await key_row(session, body["id"])
    assert row["tenant_id"] == admin.key.tenant_id
    assert row["prefix"] == body["prefix"]


async def test_created_key_authenticates_with_exactly_its_scopes(client, admin):
    response = await client.post(
        "/v1/api-keys",
        headers=admin.headers,
        json={"name": "reader", "scopes": ["read", "run", "read"]},
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["scopes"] == ["run", "read"]
    new_headers = {"Authorization": f"Bearer {created['api_key']}"}

    me = await client.get("/v1/me", headers=new_headers)
    assert me.status_code == 200, me.text
    assert me.json()["key"] == {"id": created["id"], "name": "reader"}
    assert me.json()["scopes"] == ["run", "read"]
    assert me.json()["tenant"]["id"] == str(admin.key.tenant_id)
    assert_problem(await client.get("/v1/api-keys", headers=new_headers), 403)


async def test_created_key_with_expiry_keeps_it(client, admin):
    expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    response = await client.post(
        "/v1/api-keys",
        headers=admin.headers,
        json={"name": "temp", "scopes": ["read"], "expires_at": expires.isoformat()},
    )
    assert response.status_code == 201, response.text
    assert datetime.fromisoformat(response.json()["expires_at"]) == expires
    me = await client.get(
        "/v1/me", headers={"Authorization": f"Bearer {response.json()['api_key']}"}
    )
    assert me.status_code == 200


async def test_key_plaintext_is_never_listed_nor_stored(client, session, admin):
    response = await client.post(
        "/v1/api-keys", headers=admin.headers, json={"name": "ci", "scopes": ["write"]}
    )
    plaintext = response.json()["api_key"]
    secret = plaintext.rsplit("_", 1)[1]

    listed = await client.get(
        "/v1/api-keys", headers=admin.headers, params={"include_revoked": True}
    )
    assert listed.status_code == 200
    assert secret not in listed.text
    assert all("api_key" not in item for item in listed.json()["items"])

    row = await key_row(session, response.json()["id"])
    assert row["secret_hash"] not in (secret, plaintext)
    assert all(secret not in str(value) for value in row.values()), row


async def test_key_name_is_trimmed_and_100_characters_are_accepted(client, admin):
    response = await client.post(
        "/v1/api-keys", headers=admin.headers, json={"name": "  ci  ", "scopes": ["read"]}
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "ci"
    name = "n" * 100
    response = await client.post(
        "/v1/api-keys", headers=admin.headers, json={"name": name, "scopes": ["read"]}
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == name


PAST = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
FUTURE_NAIVE = (datetime.now(UTC) + timedelta(days=1)).replace(tzinfo=None).isoformat()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"scopes": ["read"]}, "body.name", id="missing-name"),
        pytest.param({"name": None, "scopes": ["read"]}, "body.name", id="null-name"),
        pytest.param({"name": "", "scopes": ["read"]}, "body.name", id="empty-name"),
        pytest.param({"name": " \t ", "scopes": ["read"]}, "body.name", id="whitespace-name"),
        pytest.param({"name": "n" * 101, "scopes": ["read"]}, "body.name", id="name-101-chars"),
        pytest.param({"name": "ci"}, "body.scopes", id="missing-scopes"),
        pytest.param({"name": "ci", "scopes": []}, "body.scopes", id="empty-scopes"),
        pytest.param({"name": "ci", "scopes": ["root"]}, "body.scopes", id="unknown-scope"),
        pytest.param({"name": "ci", "scopes": "admin"}, "body.scopes", id="scopes-not-a-list"),
        pytest.param(
            {"name": "ci", "scopes": ["read"], "expires_at": PAST}, "body.expires_at", id="past"
        ),
        pytest.param(
            {"name": "ci", "scopes": ["read"], "expires_at": FUTURE_NAIVE},
            "body.expires_at",
            id="no-timezone",
        ),
        pytest.param(
            {"name": "ci", "scopes": ["read"], "expires_at": "tomorrow"},
            "body.expires_at",
            id="not-a-datetime",
        ),
        pytest.param(
            {"name": "ci", "scopes": ["read"], "tenant_id": str(uuid.uuid4())},
            "body.tenant_id",
            id="extra-field",
        ),
    ],
)
async def test_invalid_key_creation_answers_422_naming_the_field(
    client, session, admin, body, field
):
    before = await count_keys(session)
    response = await client.post("/v1/api-keys", headers=admin.headers, json=body)
    problem = assert_problem(response, 422)
    assert_names_field(problem, field)
    assert field in problem["detail"]
    assert await count_keys(session) == before


async def test_every_problem_of_a_key_creation_is_listed(client, admin):
    response = await client.post(
        "/v1/api-keys",
        headers=admin.headers,
        json={"name": "", "scopes": [], "expires_at": PAST, "extra": 1},
    )
    problem = assert_problem(response, 422)
    for field in ("body.name", "body.scopes", "body.expires_at", "body.extra"):
        assert_names_field(problem, field)


@pytest.mark.parametrize("name", ["a\x00b", "two\nlines", "bell\x07"])
async def test_key_name_with_control_characters_answers_422(client, session, admin, name):
    before = await count_keys(session)
    response = await client.post(
        "/v1/api-keys", headers=admin.headers, json={"name": name, "scopes": ["read"]}
    )
    assert_names_field(assert_problem(response, 422), "body.name")
    assert await count_keys(session) == before


async def test_expiry_beyond_the_representable_range_answers_422(client, admin):
    response = await client.post(
        "/v1/api-keys",
        headers=admin.headers,
        json={"name": "ci", "scopes": ["read"], "expires_at": "9999-12-31T23:59:59-10:00"},
    )
    assert_names_field(assert_problem(response, 422), "body.expires_at")


# Scopes


@pytest.mark.parametrize(
    "scopes", [["run"], ["read"], ["write"], ["run", "read", "write"]], ids="+".join
)
async def test_key_without_admin_scope_cannot_manage_keys(client, session, tenant, admin, scopes):
    tenant_key = await make_key(session, tenant, scopes, name="app")
    before = await count_keys(session)

    for response in (
        await client.get("/v1/api-keys", headers=tenant_key.headers),
        await client.post(
            "/v1/api-keys", headers=tenant_key.headers, json={"name": "x", "scopes": ["admin"]}
        ),
        await client.delete(f"/v1/api-keys/{admin.key.id}", headers=tenant_key.headers),
    ):
        problem = assert_problem(response, 403)
        assert "admin" in problem["detail"]

    assert await count_keys(session) == before
    assert (await key_row(session, admin.key.id))["revoked_at"] is None


@pytest.mark.parametrize(
    ("granted", "allowed"),
    [
        pytest.param(
            ["admin"], {"run", "read", "rules", "write", "admin"}, id="admin-does-everything"
        ),
        pytest.param(["write"], {"read", "rules", "write"}, id="write-implies-read-and-rules"),
        pytest.param(["rules"], {"rules"}, id="rules-only-writes-rules"),
        pytest.param(["read"], {"read"}, id="read-only-reads"),
        pytest.param(["run"], {"run"}, id="run-only-runs"),
        pytest.param(["run", "read"], {"run", "read"}, id="run+read"),
    ],
)
async def test_scopes_grant_what_they_imply_and_nothing_more(
    worker2_client, session, granted, allowed
):
    tenant = await make_tenant(session)
    key = await make_key(session, tenant, granted)
    for scope in Scope:
        response = await worker2_client.get(f"/test/needs-{scope.value}", headers=key.headers)
        if scope.value in allowed:
            assert response.status_code == 200, (scope, response.text)
        else:
            assert_problem(response, 403)


async def test_admin_key_can_use_every_key_route(client, admin):
    assert (await client.get("/v1/me", headers=admin.headers)).status_code == 200
    created = await client.post(
        "/v1/api-keys", headers=admin.headers, json={"name": "x", "scopes": ["run"]}
    )
    assert created.status_code == 201
    assert (await client.get("/v1/api-keys", headers=admin.headers)).status_code == 200
    deleted = await client.delete(f"/v1/api-keys/{created.json()['id']}", headers=admin.headers)
    assert deleted.status_code == 204


# Listing


async def test_keys_are_listed_newest_first_across_cursor_pages(client, session, tenant, admin):
    created = [admin.key.id]
    for n in range(7):
        created.append((await make_key(session, tenant, ["read"], name=f"k{n}")).key.id)

    items, pages = await walk_pages(client, "/v1/api-keys", admin.headers, limit=3)
    assert pages == 3
    assert [item["id"] for item in items] == [str(key_id) for key_id in reversed(created)]
    all_items = await list_all(client, admin.headers)
    stamps = [item["created_at"] for item in all_items]
    assert stamps == sorted(stamps, reverse=True)


async def test_keys_created_in_one_transaction_are_paginated_without_gaps(client, session, admin):
    for n in range(5):
        await service.create_api_key(
            session,
            tenant_id=admin.key.tenant_id,
            name=f"batch{n}",
            scopes=["read"],
            actor=OPERATOR,
        )
    await commit(session)
    expected = {item["id"] for item in await list_all(client, admin.headers)}
    assert len(expected) == 6

    items, _ = await walk_pages(client, "/v1/api-keys", admin.headers, limit=2)
    seen = [item["id"] for item in items]
    assert len(seen) == len(set(seen)), "a key was listed twice"
    assert set(seen) == expected


async def test_exact_page_size_ends_with_null_cursor(client, session, tenant, admin):
    await make_key(session, tenant, ["read"])
    first = (await client.get("/v1/api-keys", headers=admin.headers, params={"limit": 2})).json()
    assert len(first["items"]) == 2
    assert first["next_cursor"] is None


async def test_revoked_keys_are_listed_only_with_include_revoked(client, session, tenant, admin):
    doomed = await make_key(session, tenant, ["read"], name="doomed")
    assert (
        await client.delete(f"/v1/api-keys/{doomed.key.id}", headers=admin.headers)
    ).status_code == 204

    active = await list_all(client, admin.headers)
    assert [item["id"] for item in active] == [str(admin.key.id)]

    everything = await list_all(client, admin.headers, include_revoked=True)
    by_id = {item["id"]: item for item in everything}
    assert set(by_id) == {str(admin.key.id), str(doomed.key.id)}
    assert by_id[str(doomed.key.id)]["revoked_at"] is not None
    assert by_id[str(admin.key.id)]["revoked_at"] is None


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("not a cursor!", id="garbage"),
        pytest.param(base64.urlsafe_b64encode(b"{not json").decode(), id="not-json"),
        pytest.param(cursor_of([1, 2]), id="wrong-types"),
        pytest.param(cursor_of(["yesterday", "nobody"]), id="wrong-values"),
        pytest.param(cursor_of([datetime.now(UTC).isoformat()]), id="too-few-values"),
        pytest.param(
            cursor_of(["2020-01-01T00:00:00", str(uuid.uuid4())]), id="timestamp-without-zone"
        ),
        pytest.param("a" * 501, id="too-long"),
    ],
)
async def test_invalid_cursor_answers_422_naming_the_cursor(client, admin, cursor):
    response = await client.get("/v1/api-keys", headers=admin.headers, params={"cursor": cursor})
    assert_names_field(assert_problem(response, 422), "query.cursor")


async def test_cursor_with_out_of_range_timestamp_answers_422(client, admin):
    cursor = cursor_of(["0001-01-01T00:00:00+01:00", str(uuid.uuid4())])
    response = await client.get("/v1/api-keys", headers=admin.headers, params={"cursor": cursor})
    assert_names_field(assert_problem(response, 422), "query.cursor")


@pytest.mark.parametrize("limit", ["0", "201", "-1", "ten"])
async def test_out_of_range_limit_answers_422(client, admin, limit):
    response = await client.get("/v1/api-keys", headers=admin.headers, params={"limit": limit})
    assert_names_field(assert_problem(response, 422), "query.limit")


async def test_largest_limit_is_accepted(client, admin):
    response = await client.get("/v1/api-keys", headers=admin.headers, params={"limit": 200})
    assert response.status_code == 200


# Revoking


async def test_revoked_key_is_refused_at_once_and_revoking_again_is_a_no_op(
    client, session, tenant, admin
):
    target = await make_key(session, tenant, ["run"], name="target")
    assert (await client.get("/v1/me", headers=target.headers)).status_code == 200  # now cached

    response = await client.delete(f"/v1/api-keys/{target.key.id}", headers=admin.headers)
    assert response.status_code == 204
    assert response.content == b""

    refused = await client.get("/v1/me", headers=target.headers)
    problem = assert_unauthorized(refused)
    assert "revoked" in problem["detail"]
    revoked_at = (await key_row(session, target.key.id))["revoked_at"]
    assert revoked_at is not None

    again = await client.delete(f"/v1/api-keys/{target.key.id}", headers=admin.headers)
    assert again.status_code == 204
    assert (await key_row(session, target.key.id))["revoked_at"] == revoked_at
    assert_unauthorized(await client.get("/v1/me", headers=target.headers))


async def test_a_key_that_revokes_itself_is_refused_afterwards(client, admin):
    response = await client.delete(f"/v1/api-keys/{admin.key.id}", headers=admin.headers)
    assert response.status_code == 204
    assert_unauthorized(await client.get("/v1/api-keys", headers=admin.headers))


async def test_revocation_reaches_another_worker(client, worker2_client, session, tenant, admin):
    target = await make_key(session, tenant, ["run"], name="target")
    on_worker2 = await worker2_client.get("/test/needs-run", headers=target.headers)
    assert on_worker2.status_code == 200  # cached on the second worker

    response = await client.delete(f"/v1/api-keys/{target.key.id}", headers=admin.headers)
    assert response.status_code == 204

    deadline = asyncio.get_running_loop().time() + 5
    while True:
        status = (await worker2_client.get("/test/needs-run", headers=target.headers)).status_code
        if status == 401:
            break
        assert asyncio.get_running_loop().time() < deadline, "worker 2 still accepts the key"
        await asyncio.sleep(0.02)


async def test_revoking_an_unknown_key_answers_404(client, admin):
    response = await client.delete(f"/v1/api-keys/{uuid.uuid4()}", headers=admin.headers)
    assert_problem(response, 404)


async def test_revoking_a_non_uuid_answers_422_naming_the_path(client, admin):
    response = await client.delete("/v1/api-keys/not-a-uuid", headers=admin.headers)
    assert_names_field(assert_problem(response, 422), "path.key_id")


# Expiry and usage


async def test_expired_key_is_refused_with_a_problem(client, session):
    tenant = await make_tenant(session)
    in_an_hour = datetime.now(UTC) + timedelta(hours=1)
    key = await make_key(session, tenant, ["admin"], expires_at=in_an_hour)
    # the service refuses to mint an expired key, so let its hour pass in the database
    await session.execute(
        text("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = :id"),
        {"id": key.key.id},
    )
    await session.commit()
    response = await client.get("/v1/me", headers=key.headers)
    problem = assert_unauthorized(response)
    assert "expired" in problem["detail"]


async def test_key_expiring_while_cached_is_refused_after_expiry(client, session):
    tenant = await make_tenant(session)
    expires = datetime.now(UTC) + timedelta(seconds=0.4)
    key = await make_key(session, tenant, ["run"], expires_at=expires)
    assert (await client.get("/v1/me", headers=key.headers)).status_code == 200
    await asyncio.sleep((expires - datetime.now(UTC)).total_seconds() + 0.05)
    assert_unauthorized(await client.get("/v1/me", headers=key.headers))


async def test_last_used_at_is_listed_after_the_usage_flush(client, session, app, tenant, admin):
    used = await make_key(session, tenant, ["run"], name="used")
    unused = await make_key(session, tenant, ["run"], name="unused")
    await app.state.authenticator.usage.flush()
    by_id = {i["id"]: i for i in await list_all(client, admin.headers)}
    assert by_id[str(used.key.id)]["last_used_at"] is None

    before = datetime.now(UTC)
    assert (await client.get("/v1/me", headers=used.headers)).status_code == 200
    await app.state.authenticator.usage.flush()
    after = datetime.now(UTC)

    by_id = {i["id"]: i for i in await list_all(client, admin.headers)}
    last_used = datetime.fromisoformat(by_id[str(used.key.id)]["last_used_at"])
    assert before <= last_used <= after
    assert by_id[str(unused.key.id)]["last_used_at"] is None
