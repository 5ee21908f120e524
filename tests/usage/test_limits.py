"""Usage limits as data: requests per minute and a monthly spend cap, across two app instances."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sqlalchemy import text

from promptlogic.app import create_app
from tests.conftest import client_for, running
from tests.factories import make_key, make_tenant
from tests.fakes import Reply, Usage
from tests.helpers import assert_names_field, assert_problem
from tests.runs.support import VARIABLES, make_prompt, run, use_fake


@pytest.fixture
async def runner(session, tenant):
    return await make_key(session, tenant, ["run", "read"], name="checkout")


@pytest.fixture
async def second_app(settings, clean):
    """Another instance of the service on the same database: another worker."""
    async with running(create_app(settings)) as other:
        yield other


async def set_limits(client, admin, rpm=None, cap=None):
    body = {"requests_per_minute": rpm, "monthly_spend_cap": cap}
    response = await client.put("/v1/limits", headers=admin.headers, json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def test_limits_are_data_an_admin_sets_and_anyone_reads(client, session, tenant, admin):
    reader = await make_key(session, tenant, ["read"])
    shown = await client.get("/v1/limits", headers=reader.headers)
    assert shown.json() == {
        "requests_per_minute": None,
        "monthly_spend_cap": None,
        "spent_this_month": 0,
        "updated_by": None,
    }
    set_ = await set_limits(client, admin, rpm=120, cap=25.5)
    assert set_ == {
        "requests_per_minute": 120,
        "monthly_spend_cap": 25.5,
        "spent_this_month": 0,
        "updated_by": "deployer",
    }
    assert (await client.get("/v1/limits", headers=reader.headers)).json() == set_
    body = {"requests_per_minute": 1, "monthly_spend_cap": None}
    assert_problem(await client.put("/v1/limits", headers=reader.headers, json=body), 403)
    audit = await client.get("/v1/audit", headers=admin.headers)
    assert "usage_limits.set" in [event["action"] for event in audit.json()["items"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"requests_per_minute": 0, "monthly_spend_cap": None}, "body.requests_per_minute"),
        ({"requests_per_minute": "many", "monthly_spend_cap": None}, "body.requests_per_minute"),
        ({"requests_per_minute": None, "monthly_spend_cap": -1}, "body.monthly_spend_cap"),
        ({"requests_per_minute": None}, "body.monthly_spend_cap"),
        ({"requests_per_minute": None, "monthly_spend_cap": "NaN"}, "body.monthly_spend_cap"),
        ('{"requests_per_minute": null, "monthly_spend_cap": 1e400}', "body.monthly_spend_cap"),
        ({"requests_per_minute": None, "monthly_spend_cap": 0.0000001}, "body.monthly_spend_cap"),
        ({"requests_per_minute": 2**40, "monthly_spend_cap": None}, "body.requests_per_minute"),
        ({"requests_per_minute": 5, "monthly_spend_cap": None, "burst": 9}, "body.burst"),
    ],
)
async def test_bad_limits_name_the_field_and_change_nothing(client, admin, body, field):
    await set_limits(client, admin, rpm=7)
    if isinstance(body, str):  # JSON that Python's encoder would not write
        headers = {**admin.headers, "content-type": "application/json"}
        response = await client.put("/v1/limits", headers=headers, content=body)
    else:
        response = await client.put("/v1/limits", headers=admin.headers, json=body)
    assert_names_field(assert_problem(response, 422), field)
    assert (await client.get("/v1/limits", headers=admin.headers)).json()[
        "requests_per_minute"
    ] == 7


async def test_runs_over_the_minute_limit_are_429_with_retry_after(client, session, admin, runner):
    await make_prompt(client, admin)
    await set_limits(client, admin, rpm=3)
    for _ in range(3):
        assert (await run(client, runner, {"variables": VARIABLES})).status_code == 200
    refused = await run(client, runner, {"variables": VARIABLES})
    problem = assert_problem(refused, 429)
    assert problem["type"].endswith("usage-limit")
    assert "3 runs per minute" in problem["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # Another tenant has its own minute.
    other = await make_tenant(session, "globex")
    other_admin = await make_key(session, other, ["admin"])
    await make_prompt(client, other_admin)
    assert (await run(client, other_admin, {"variables": VARIABLES})).status_code == 200


async def test_the_minute_limit_holds_across_two_instances(app, client, admin, runner, second_app):
    await make_prompt(client, admin)
    await set_limits(client, admin, rpm=5)
    async with client_for(second_app) as other_client:
        statuses = []
        for turn in range(8):
            on = client if turn % 2 == 0 else other_client
            statuses.append((await run(on, runner, {"variables": VARIABLES})).status_code)
    assert statuses.count(200) == 5
    assert statuses[5:] == [429, 429, 429]


async def test_a_large_limit_takes_requests_in_leases_not_one_round_trip_each(
    app, client, admin, runner
):
    await make_prompt(client, admin)
    await set_limits(client, admin, rpm=1000)
    for _ in range(10):
        assert (await run(client, runner, {"variables": VARIABLES})).status_code == 200
    async with app.state.engine.connect() as connection:
        leased = await connection.scalar(text("SELECT requests FROM usage_rate_windows"))
    assert leased == 50  # one lease of a twentieth of the limit served all ten


async def test_a_changed_limit_applies_from_the_next_run(client, admin, runner):
    await make_prompt(client, admin)
    await set_limits(client, admin, rpm=1)
    assert (await run(client, runner, {"variables": VARIABLES})).status_code == 200
    assert_problem(await run(client, runner, {"variables": VARIABLES}), 429)
    await set_limits(client, admin, rpm=None)
    assert (await run(client, runner, {"variables": VARIABLES})).status_code == 200


async def wait_for_spend(app, tenant, expected: Decimal) -> None:
    limiter = app.state.usage_limiter
    for _ in range(200):
        if limiter.month_spend(tenant.id) == expected:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"spend seen: {limiter.month_spend(tenant.id)}, expected {expected}")


async def test_the_spend_cap_counts_what_every_instance_spent(
    app, client, tenant, admin, runner, second_app, fake_openai
):
    await make_prompt(client, admin)
    await use_fake(client, admin, fake_openai)
    price = {"input_per_million": 100, "output_per_million": 0}
    assert (
        await client.put("/v1/models/gpt-4o-mini", headers=admin.headers, json=price)
    ).status_code == 200
    fake_openai.set_default(Reply("ok", usage=Usage(1000, 0)))  # 0.1 USD a run
    other_limiter = second_app.state.usage_limiter
    seen = other_limiter._generation.get(tenant.id, 0)
    await set_limits(client, admin, cap=0.15)
    # The second instance drops what it knew of the tenant when the limits' NOTIFY reaches it;
    # arriving after its run below, it would drop the spend this test then waits for.
    for _ in range(200):
        if other_limiter._generation.get(tenant.id, 0) > seen:
            break
        await asyncio.sleep(0.01)
    async with client_for(second_app) as other_client:
        first = await run(client, runner, {"variables": VARIABLES})
        assert first.json()["cost"] == pytest.approx(0.1)
        # The second instance has not seen the first one's run yet: it is not written.
        assert (await run(other_client, runner, {"variables": VARIABLES})).status_code == 200
        await app.state.run_recorder.flush()
        await second_app.state.run_recorder.flush()
        # Each learns the other's spend from the recorder's NOTIFY, not from a new read.
        await wait_for_spend(app, tenant, Decimal("0.2"))
        await wait_for_spend(second_app, tenant, Decimal("0.2"))
        for on in (client, other_client):
            refused = await run(on, runner, {"variables": VARIABLES})
            problem = assert_problem(refused, 429)
            assert "monthly spend cap" in problem["detail"]
            assert int(refused.headers["Retry-After"]) >= 1
    assert fake_openai.call_count() == 2
    shown = await client.get("/v1/limits", headers=admin.headers)
    assert shown.json()["spent_this_month"] == pytest.approx(0.2)


async def test_a_finished_run_counts_against_the_cap_before_it_is_written(
    app, client, admin, runner, fake_openai
):
    await make_prompt(client, admin)
    await use_fake(client, admin, fake_openai)
    price = {"input_per_million": 100, "output_per_million": 0}
    await client.put("/v1/models/gpt-4o-mini", headers=admin.headers, json=price)
    fake_openai.set_default(Reply("ok", usage=Usage(1000, 0)))
    await set_limits(client, admin, cap=0.1)
    assert (await run(client, runner, {"variables": VARIABLES})).status_code == 200
    assert app.state.run_recorder.buffered >= 1  # still only in memory
    assert_problem(await run(client, runner, {"variables": VARIABLES}), 429)
