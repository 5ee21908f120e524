"""Provider connections over the API: validation, write-only credentials, one default."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.factories import make_key
from tests.helpers import assert_names_field, assert_problem

KEY = "sk-test-abcdefghijklmnop-WXYZ"
HEADER_SECRET = "gateway-secret-value-123"


def connection(**fields):
    return {"name": "main", "kind": "openai", "api_key": KEY, **fields}


async def test_creating_a_connection_never_returns_or_audits_its_secrets(client, session, admin):
    body = connection(default_headers={"X-Gateway-Key": HEADER_SECRET}, is_default=True)
    response = await client.post("/v1/providers", headers=admin.headers, json=body)
    assert response.status_code == 201, response.text
    out = response.json()
    assert out["has_api_key"] is True
    assert out["api_key_last4"] == "WXYZ"
    assert out["header_names"] == ["X-Gateway-Key"]
    assert (out["kind"], out["timeout_seconds"], out["is_default"]) == ("openai", 60.0, True)
    assert response.headers["cache-control"] == "no-store"
    listed = await client.get("/v1/providers", headers=admin.headers)
    one = await client.get("/v1/providers/main", headers=admin.headers)
    audit = await client.get("/v1/audit", headers=admin.headers)
    for answer in (response, listed, one, audit):
        assert KEY not in answer.text
        assert KEY[-8:] not in answer.text
        assert HEADER_SECRET not in answer.text
    assert one.json() == out
    assert audit.json()["items"][0]["action"] == "provider.create"


async def test_credentials_are_encrypted_at_rest(client, session, admin):
    body = connection(default_headers={"X-Gateway-Key": HEADER_SECRET})
    assert (await client.post("/v1/providers", headers=admin.headers, json=body)).status_code == 201
    row = (await session.execute(text("SELECT * FROM provider_connections"))).mappings().one()
    raw = repr(dict(row)).encode() + bytes(row["api_key_encrypted"])
    raw += bytes(row["headers_encrypted"])
    assert KEY.encode() not in raw
    assert HEADER_SECRET.encode() not in raw
    dump = await session.scalar(text("SELECT row_to_json(p)::text FROM provider_connections p"))
    assert KEY not in dump
    assert HEADER_SECRET not in dump


async def test_patch_replaces_and_clears_the_api_key(client, session, admin):
    body = connection(kind="openai_compatible", base_url="http://localhost:11434/v1")
    assert (await client.post("/v1/providers", headers=admin.headers, json=body)).status_code == 201
    replaced = await client.patch(
        "/v1/providers/main", headers=admin.headers, json={"api_key": "short-key"}
    )
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["has_api_key"], replaced.json()["api_key_last4"]) == (True, None)
    cleared = await client.patch(
        "/v1/providers/main", headers=admin.headers, json={"api_key": None}
    )
    assert (cleared.json()["has_api_key"], cleared.json()["api_key_last4"]) == (False, None)
    stored = await session.scalar(text("SELECT api_key_encrypted FROM provider_connections"))
    assert stored is None
    events = (await client.get("/v1/audit", headers=admin.headers)).json()["items"]
    assert [e["action"] for e in events[:2]] == ["provider.update", "provider.update"]
    assert events[1]["after"]["secrets_replaced"] == ["api_key"]
    assert "short-key" not in str(events)


async def test_only_one_connection_is_the_default(client, session, admin):
    for name in ("first", "second"):
        response = await client.post(
            "/v1/providers", headers=admin.headers, json=connection(name=name, is_default=True)
        )
        assert response.status_code == 201, response.text
    listed = (await client.get("/v1/providers", headers=admin.headers)).json()["items"]
    assert {c["name"]: c["is_default"] for c in listed} == {"first": False, "second": True}
    response = await client.patch(
        "/v1/providers/first", headers=admin.headers, json={"is_default": True}
    )
    assert response.status_code == 200
    listed = (await client.get("/v1/providers", headers=admin.headers)).json()["items"]
    assert {c["name"]: c["is_default"] for c in listed} == {"first": True, "second": False}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (connection(name="Bad Name"), "body.name"),
        (connection(kind="anthropic"), "body.kind"),
        (connection(kind="openai_compatible"), "body.base_url"),
        (
            connection(kind="azure_openai", base_url="https://x.openai.azure.com"),
            "body.api_version",
        ),
        (connection(api_key=None), "body.api_key"),
        (connection(base_url="ftp://example.com"), "body.base_url"),
        (connection(base_url="https://user:pw@example.com/v1"), "body.base_url"),
        (connection(base_url="https://example.com/v1?key=secret"), "body.base_url"),
        (connection(api_version="2024-10-21"), "body.api_version"),
        (connection(default_headers={"Bad Header": "x"}), "body.default_headers"),
        (connection(default_headers={"X-A": "a\r\nInjected: 1"}), "body.default_headers"),
        (connection(timeout_seconds=0), "body.timeout_seconds"),
        (connection(kind="offline"), "body.kind"),
        (connection(extra=1), "body.extra"),
    ],
)
async def test_invalid_connections_are_refused_naming_the_field(client, admin, body, field):
    body = {k: v for k, v in body.items() if v is not None}
    response = await client.post("/v1/providers", headers=admin.headers, json=body)
    problem = assert_problem(response, 422)
    assert_names_field(problem, field)
    assert KEY not in response.text


async def test_duplicate_names_conflict_and_unknown_ones_are_404(client, admin):
    assert (
        await client.post("/v1/providers", headers=admin.headers, json=connection())
    ).status_code == 201
    assert_problem(
        await client.post("/v1/providers", headers=admin.headers, json=connection()), 409
    )
    assert_problem(await client.get("/v1/providers/nope", headers=admin.headers), 404)
    assert (await client.delete("/v1/providers/main", headers=admin.headers)).status_code == 204
    assert_problem(await client.get("/v1/providers/main", headers=admin.headers), 404)


async def test_keys_without_admin_cannot_see_or_change_providers(client, session, tenant, admin):
    writer = await make_key(session, tenant, ["run", "read", "write"])
    assert_problem(await client.get("/v1/providers", headers=writer.headers), 403)
    assert_problem(
        await client.post("/v1/providers", headers=writer.headers, json=connection()), 403
    )
    assert_problem(await client.patch("/v1/providers/x", headers=writer.headers, json={}), 403)
    assert_problem(await client.delete("/v1/providers/x", headers=writer.headers), 403)
    price = {"input_per_million": 1, "output_per_million": 1}
    assert_problem(await client.put("/v1/models/x", headers=writer.headers, json=price), 403)
    assert (await client.get("/v1/models", headers=writer.headers)).status_code == 200
