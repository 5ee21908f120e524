"""The audit trail: key changes recorded with their actor, read newest first, per tenant."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import client_for
from tests.factories import make_key, make_tenant
from tests.helpers import (
    assert_names_field,
    assert_problem,
    assert_unauthorized,
    cursor_of,
    only_page,
    walk_pages,
)


async def audit(client, headers, **params) -> list[dict[str, Any]]:
    """Every event the filters match, in one page."""
    return await only_page(client, "/v1/audit", headers, **{"limit": 200, **params})


async def create_key(client, headers, name="ci", scopes=("read",)) -> dict[str, Any]:
    response = await client.post(
        "/v1/api-keys", headers=headers, json={"name": name, "scopes": list(scopes)}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_creating_a_key_records_who_created_what(client, tenant, admin):
    created = await create_key(client, admin.headers, name="checkout", scopes=["run", "read"])

    events = await audit(client, admin.headers, action="api_key.create", target_id=created["id"])
    assert len(events) == 1
    event = events[0]
    assert event["tenant_id"] == str(tenant.id)
    assert event["actor"] == {"type": "api_key", "id": str(admin.key.id), "name": "deployer"}
    assert event["target_type"] == "api_key"
    assert event["target_id"] == created["id"]
    assert event["before"] is None
    assert event["after"] == {
        "name": "checkout",
        "prefix": created["prefix"],
        "scopes": ["run", "read"],
        "expires_at": None,
        "revoked_at": None,
    }
    assert event["created_at"]


async def test_revoking_a_key_records_before_and_after_once(client, session, tenant, admin):
    target = await make_key(session, tenant, ["run"], name="target")
    for _ in range(2):  # the second revocation is a no-op and records nothing
        response = await client.delete(f"/v1/api-keys/{target.key.id}", headers=admin.headers)
        assert response.status_code == 204

    events = await audit(client, admin.headers, action="api_key.revoke")
    assert len(events) == 1
    event = events[0]
    assert event["actor"] == {"type": "api_key", "id": str(admin.key.id), "name": "deployer"}
    assert event["target_type"] == "api_key"
    assert event["target_id"] == str(target.key.id)
    assert event["before"]["revoked_at"] is None
    assert event["after"]["revoked_at"] is not None
    assert event["before"]["name"] == event["after"]["name"] == "target"
    assert event["after"]["prefix"] == target.key.prefix

    listed = await client.get(
        "/v1/api-keys", headers=admin.headers, params={"include_revoked": True}
    )
    revoked_at = {i["id"]: i["revoked_at"] for i in listed.json()["items"]}[str(target.key.id)]
    assert revoked_at is not None


async def test_audit_events_never_hold_a_secret_or_its_hash(client, session, admin):
    created = await create_key(client, admin.headers, name="ci", scopes=["write"])
    assert (
        await client.delete(f"/v1/api-keys/{created['id']}", headers=admin.headers)
    ).status_code == 204
    secrets = []
    for token in (created["api_key"], admin.token):
        secret = token.rsplit("_", 1)[1]
        secrets += [token, secret, hashlib.sha256(secret.encode()).hexdigest()]
    rows = (await session.execute(text("SELECT secret_hash FROM api_keys"))).scalars().all()
    secrets += rows

    listed = await client.get("/v1/audit", headers=admin.headers)
    assert listed.status_code == 200
    stored = (
        (await session.execute(text("SELECT audit_events::text FROM audit_events"))).scalars().all()
    )
    assert len(stored) >= 4  # tenant.create, 2x api_key.create, api_key.revoke
    for secret in secrets:
        assert secret not in listed.text
        assert all(secret not in row for row in stored)


async def test_a_rejected_change_records_no_event(client, session, admin):
    before = await audit(client, admin.headers)
    response = await client.post(
        "/v1/api-keys", headers=admin.headers, json={"name": "", "scopes": ["read"]}
    )
    assert response.status_code == 422
    denied = await client.delete(
        "/v1/api-keys/00000000-0000-0000-0000-000000000000", headers=admin.headers
    )
    assert denied.status_code == 404
    assert await audit(client, admin.headers) == before


async def test_audit_is_listed_newest_first_across_cursor_pages(client, admin):
    for n in range(5):
        await create_key(client, admin.headers, name=f"k{n}")
    everything = await audit(client, admin.headers)
    assert len(everything) == 7  # tenant.create, factory key, five keys via the API
    ids = [e["id"] for e in everything]
    assert ids == sorted(ids, reverse=True)
    assert [e["after"]["name"] for e in everything[:5]] == ["k4", "k3", "k2", "k1", "k0"]
    assert everything[-1]["action"] == "tenant.create"

    items, pages = await walk_pages(client, "/v1/audit", admin.headers, limit=3)
    assert pages == 3
    assert [e["id"] for e in items] == ids


async def test_audit_filters_by_action_target_type_and_target_id(client, session, tenant, admin):
    first = await create_key(client, admin.headers, name="first")
    second = await create_key(client, admin.headers, name="second")
    assert (
        await client.delete(f"/v1/api-keys/{first['id']}", headers=admin.headers)
    ).status_code == 204

    creates = await audit(client, admin.headers, action="api_key.create")
    assert {e["target_id"] for e in creates} == {str(admin.key.id), first["id"], second["id"]}
    assert all(e["action"] == "api_key.create" for e in creates)

    tenants = await audit(client, admin.headers, target_type="tenant")
    assert [(e["action"], e["target_id"]) for e in tenants] == [("tenant.create", str(tenant.id))]
    assert tenants[0]["actor"]["type"] == "operator"

    about_first = await audit(client, admin.headers, target_id=first["id"])
    assert [e["action"] for e in about_first] == ["api_key.revoke", "api_key.create"]

    combined = await audit(
        client, admin.headers, action="api_key.revoke", target_type="api_key", target_id=first["id"]
    )
    assert len(combined) == 1
    assert await audit(client, admin.headers, action="api_key.revoke", target_id=second["id"]) == []
    assert await audit(client, admin.headers, action="no.such.action") == []


@pytest.mark.parametrize("scopes", [["run"], ["read"], ["write"], ["run", "read", "write"]])
async def test_reading_the_audit_needs_the_admin_scope(client, session, tenant, scopes):
    key = await make_key(session, tenant, scopes)
    problem = assert_problem(await client.get("/v1/audit", headers=key.headers), 403)
    assert "admin" in problem["detail"]


async def test_reading_the_audit_needs_a_key(client, admin):
    assert_unauthorized(await client.get("/v1/audit"))


async def test_another_tenants_events_are_never_visible(client, session, tenant, admin):
    other = await make_tenant(session, "bravo-corp")
    other_admin = await make_key(session, other, ["admin"], name="bravo-admin")
    other_key = await create_key(client, other_admin.headers, name="bravo-app")
    assert (
        await client.delete(f"/v1/api-keys/{other_key['id']}", headers=other_admin.headers)
    ).status_code == 204

    mine = await audit(client, admin.headers)
    assert {e["tenant_id"] for e in mine} == {str(tenant.id)}
    listed = await client.get("/v1/audit", headers=admin.headers)
    for marker in (str(other.id), "bravo", str(other_admin.key.id), other_key["id"]):
        assert marker not in listed.text
    assert await audit(client, admin.headers, target_id=other_key["id"]) == []
    assert await audit(client, admin.headers, target_id=str(other.id)) == []

    theirs = await audit(client, other_admin.headers)
    assert {e["tenant_id"] for e in theirs} == {str(other.id)}
    assert len(theirs) == 4  # tenant.create, factory key, api_key.create, api_key.revoke


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("not a cursor!", id="garbage"),
        pytest.param(cursor_of(["7"]), id="string-id"),
        pytest.param(cursor_of([True]), id="boolean-id"),
        pytest.param(cursor_of([1, 2]), id="too-many-values"),
        pytest.param(cursor_of([1.5]), id="float-id"),
    ],
)
async def test_invalid_audit_cursor_answers_422_naming_the_cursor(client, admin, cursor):
    response = await client.get("/v1/audit", headers=admin.headers, params={"cursor": cursor})
    assert_names_field(assert_problem(response, 422), "query.cursor")


@pytest.mark.parametrize("limit", ["0", "201"])
async def test_out_of_range_audit_limit_answers_422(client, admin, limit):
    response = await client.get("/v1/audit", headers=admin.headers, params={"limit": limit})
    assert_names_field(assert_problem(response, 422), "query.limit")


async def test_audit_cursor_beyond_int64_answers_422(app, admin):
    async with client_for(app, raise_app_exceptions=False) as client:
        response = await client.get(
            "/v1/audit", headers=admin.headers, params={"cursor": cursor_of([2**63])}
        )
    assert_names_field(assert_problem(response, 422), "query.cursor")


async def test_audit_filter_with_a_nul_character_answers_422(app, admin):
    async with client_for(app, raise_app_exceptions=False) as client:
        response = await client.get(
            "/v1/audit", headers=admin.headers, params={"action": "api_key.create\x00"}
        )
    assert_names_field(assert_problem(response, 422), "query.action")
