"""The model catalog: seeded prices, tenant overrides, and the cost of a call."""

from __future__ import annotations

from decimal import Decimal

from promptlogic.providers.catalog import PriceBook
from tests.factories import make_key, make_tenant
from tests.helpers import assert_names_field, assert_problem, walk_pages


async def test_catalog_is_seeded_with_common_models(client, admin):
    items, _ = await walk_pages(client, "/v1/models", admin.headers, limit=4)
    by_name = {item["name"]: item for item in items}
    for model in ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-nano", "o3-mini", "llama-3.1-70b"):
        assert by_name[model]["source"] == "catalog"
    assert by_name["gpt-4o-mini"]["input_per_million"] == 0.15
    assert by_name["gpt-4o-mini"]["output_per_million"] == 0.6
    assert [i["name"] for i in items] == sorted(by_name)


async def test_a_tenants_price_overrides_the_catalog_for_that_tenant_only(client, session, admin):
    other = await make_key(session, await make_tenant(session), ["read"])
    response = await client.put(
        "/v1/models/gpt-4o",
        headers=admin.headers,
        json={"input_per_million": "1.25", "output_per_million": 5},
    )
    assert response.status_code == 200, response.text
    assert response.json()["source"] == "tenant"
    mine = {
        i["name"]: i
        for i in (await client.get("/v1/models", headers=admin.headers)).json()["items"]
    }
    assert (mine["gpt-4o"]["input_per_million"], mine["gpt-4o"]["source"]) == (1.25, "tenant")
    theirs = (await client.get("/v1/models", headers=other.headers)).json()["items"]
    assert {i["name"]: i["input_per_million"] for i in theirs}["gpt-4o"] == 2.5
    assert (await client.delete("/v1/models/gpt-4o", headers=admin.headers)).status_code == 204
    mine = {
        i["name"]: i
        for i in (await client.get("/v1/models", headers=admin.headers)).json()["items"]
    }
    assert mine["gpt-4o"]["source"] == "catalog"
    assert_problem(await client.delete("/v1/models/gpt-4o", headers=admin.headers), 404)


async def test_a_tenant_can_price_a_model_missing_from_the_catalog(client, admin):
    price = {"input_per_million": 0, "output_per_million": 0}
    response = await client.put(
        "/v1/models/meta-llama/Llama-3.3-70B", headers=admin.headers, json=price
    )
    assert response.status_code == 200, response.text
    names = [
        i["name"] for i in (await client.get("/v1/models", headers=admin.headers)).json()["items"]
    ]
    assert "meta-llama/Llama-3.3-70B" in names


async def test_invalid_prices_are_refused_naming_the_field(client, admin):
    for body, field in [
        ({"input_per_million": -1, "output_per_million": 1}, "body.input_per_million"),
        ({"input_per_million": 1, "output_per_million": "1.0000001"}, "body.output_per_million"),
        ({"input_per_million": 1}, "body.output_per_million"),
        ({"input_per_million": "NaN", "output_per_million": 1}, "body.input_per_million"),
    ]:
        response = await client.put("/v1/models/gpt-4o", headers=admin.headers, json=body)
        assert_names_field(assert_problem(response, 422), field)


async def test_cost_uses_the_effective_price_and_follows_changes(app, client, tenant, admin):
    prices: PriceBook = app.state.prices
    cost = await prices.cost_of(tenant.id, "gpt-4o-mini", 1_000_000, 2_000_000)
    assert cost == Decimal("1.35")  # 0.15 + 2 * 0.60
    assert await prices.cost_of(tenant.id, "gpt-4o-2024-08-06", 1000, 1000) == Decimal("0.0125")
    assert await prices.cost_of(tenant.id, "no-such-model", 10, 10) is None
    await client.put(
        "/v1/models/gpt-4o-mini",
        headers=admin.headers,
        json={"input_per_million": 1, "output_per_million": 1},
    )
    assert await prices.cost_of(tenant.id, "gpt-4o-mini", 500_000, 500_000) == Decimal(1)
