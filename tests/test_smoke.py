from tests.factories import make_key, make_tenant


async def test_me_returns_tenant_of_key(client, session):
    tenant = await make_tenant(session, "acme")
    key = await make_key(session, tenant, ["run", "read"], name="checkout")
    response = await client.get("/v1/me", headers=key.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["tenant"] == {"id": str(tenant.id), "slug": "acme", "name": "Tenant acme"}
    assert body["key"] == {"id": str(key.key.id), "name": "checkout"}
    assert body["scopes"] == ["run", "read"]
