"""GET /v1/runs and /v1/runs/{run_id}: filters, pages, scopes, tenant isolation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from promptlogic.runs.service import RunRecord
from tests.factories import make_key, make_run, make_tenant
from tests.helpers import assert_problem, cursor_of, only_page, walk_pages

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
async def runs(session, tenant):
    """Five runs of acme, one a minute, of two prompts, labels and statuses."""
    return [
        await make_run(session, tenant, created_at=at(0), end_user="u-1"),
        await make_run(session, tenant, created_at=at(1), version=2, label="staging"),
        await make_run(session, tenant, created_at=at(2), status="failed", error={"type": "x"}),
        await make_run(session, tenant, created_at=at(3), prompt="summary", end_user="u-1"),
        await make_run(session, tenant, created_at=at(4), prompt="summary", arm="b"),
    ]


def ids(items) -> list[str]:
    return [item["id"] for item in items]


async def test_runs_are_listed_newest_first_across_pages(client, admin, runs):
    items, pages = await walk_pages(client, "/v1/runs", admin.headers, limit=2)
    assert ids(items) == [str(run.id) for run in reversed(runs)]
    assert pages == 3


async def test_runs_started_in_the_same_instant_are_paged_without_loss(
    client, session, tenant, admin
):
    same = [await make_run(session, tenant, created_at=T0) for _ in range(5)]
    items, _ = await walk_pages(client, "/v1/runs", admin.headers, limit=2)
    assert sorted(ids(items)) == sorted(str(run.id) for run in same)
    assert len(set(ids(items))) == 5


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"prompt": "summary"}, [4, 3]),
        ({"prompt": "triage", "version": 2}, [1]),
        ({"label": "staging"}, [1]),
        ({"status": "failed"}, [2]),
        ({"end_user": "u-1"}, [3, 0]),
        ({"created_after": at(2).isoformat(), "created_before": at(4).isoformat()}, [3, 2]),
    ],
)
async def test_filters_narrow_the_list(client, admin, runs, params, expected):
    items = await only_page(client, "/v1/runs", admin.headers, **params)
    assert ids(items) == [str(runs[i].id) for i in expected]


async def test_a_filtered_list_pages_too(client, admin, runs):
    items, pages = await walk_pages(
        client, "/v1/runs", admin.headers, limit=1, params={"prompt": "triage"}
    )
    assert ids(items) == [str(runs[i].id) for i in (2, 1, 0)]
    assert pages == 3


async def test_one_run_is_returned_whole(client, admin, runs):
    run = runs[2]
    response = await client.get(f"/v1/runs/{run.id}", headers=admin.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == str(run.id)
    assert datetime.fromisoformat(body["created_at"]) == run.created_at
    assert body["status"] == "failed"
    assert body["error"] == {"type": "x"}
    assert body["usage"] == {"input_tokens": 10, "output_tokens": 5}
    assert body["cost"] == pytest.approx(0.0000045)
    assert body["principal"] == {"type": "api_key", "id": None, "name": "app"}
    assert body["inputs"] == {"ticket": "printer on fire"}
    assert body["parsed"] == {"priority": "high"}
    assert body["metadata"] == {}


async def test_a_run_shows_no_secret(client, session, tenant, admin):
    key = await make_key(session, tenant, ["run"], name="app")
    run = await make_run(session, tenant, principal_id=str(key.key.id), principal_name=key.key.name)
    response = await client.get(f"/v1/runs/{run.id}", headers=admin.headers)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "id", "created_at", "status", "prompt", "version", "label", "arm", "versions_used", "bound",
        "principal", "end_user", "inputs", "messages", "output", "parsed", "model", "provider",
        "usage", "cost", "latency_ms", "time_to_first_token_ms", "repaired", "error", "metadata",
        "idempotency_key",
    }  # fmt: skip
    assert key.token not in response.text
    assert key.key.secret_hash not in response.text


async def test_another_tenants_run_is_not_found(client, session, admin, runs):
    other = await make_tenant(session, "globex")
    theirs = await make_run(session, other, end_user="globex-user")
    response = await client.get(f"/v1/runs/{theirs.id}", headers=admin.headers)
    assert_problem(response, 404)
    listed = await only_page(client, "/v1/runs", admin.headers, end_user="globex-user")
    assert listed == []


async def test_an_unknown_run_is_not_found(client, admin):
    assert_problem(await client.get(f"/v1/runs/{uuid.uuid4()}", headers=admin.headers), 404)


async def test_runs_need_the_read_scope(client, session, tenant, runs):
    run_only = await make_key(session, tenant, ["run"], name="runner")
    assert_problem(await client.get("/v1/runs", headers=run_only.headers), 403)
    response = await client.get(f"/v1/runs/{runs[0].id}", headers=run_only.headers)
    assert_problem(response, 403)
    reader = await make_key(session, tenant, ["read"], name="reader")
    assert (await client.get("/v1/runs", headers=reader.headers)).status_code == 200


@pytest.mark.parametrize(
    "cursor",
    ["garbage", cursor_of([1, 2]), cursor_of(["not a time", str(uuid.uuid4())]),
     cursor_of([T0.replace(tzinfo=None).isoformat(), str(uuid.uuid4())]),
     cursor_of([T0.isoformat(), "not-a-uuid"])],
)  # fmt: skip
async def test_a_forged_cursor_is_refused(client, admin, cursor):
    response = await client.get("/v1/runs", headers=admin.headers, params={"cursor": cursor})
    assert_problem(response, 422)


async def test_a_time_filter_without_a_time_zone_is_refused(client, admin):
    response = await client.get(
        "/v1/runs", headers=admin.headers, params={"created_after": "2026-11-01T12:00:00"}
    )
    assert_problem(response, 422)


async def test_the_apps_recorder_writes_what_the_api_reads(app, client, tenant, admin):
    run = await make_run_through_recorder(app, tenant)
    response = await client.get(f"/v1/runs/{run.id}", headers=admin.headers)
    assert response.status_code == 200, response.text


async def make_run_through_recorder(app, tenant) -> RunRecord:
    run = RunRecord(
        tenant_id=tenant.id,
        prompt="triage",
        principal_type="api_key",
        principal_name="app",
        status="succeeded",
        latency_ms=1,
    )
    await app.state.run_recorder.record_durably(run)
    return run
