"""Traffic splits: a label over several versions by weight, the arm stable per end user."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.helpers import assert_names_field, assert_problem, walk_pages
from tests.runs.support import TICKET, VARIABLES, run


async def two_versions(client, admin) -> None:
    response = await client.post(
        "/v1/prompts", headers=admin.headers, json={"name": "triage", "version": TICKET}
    )
    assert response.status_code == 201, response.text
    second = {**TICKET, "messages": [{"role": "user", "content": "v2: {{ ticket }} {{ company }}"}]}
    response = await client.post("/v1/prompts/triage/versions", headers=admin.headers, json=second)
    assert response.status_code == 201, response.text


async def move(client, admin, body, expected=None):
    return await client.put(
        "/v1/prompts/triage/labels/production",
        headers=admin.headers,
        json={**body, "expected_version": expected},
    )


SPLIT = {"versions": [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}]}


async def test_a_label_can_split_traffic_and_says_so(client, admin):
    await two_versions(client, admin)
    body = {"versions": [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}]}
    moved = await move(client, admin, body)
    assert moved.status_code == 200, moved.text
    assert moved.json()["version"] == 1  # the heaviest arm
    assert moved.json()["versions"] == body["versions"]
    shown = await client.get("/v1/prompts/triage/labels/production", headers=admin.headers)
    assert shown.json()["versions"] == body["versions"]
    listed = await client.get("/v1/prompts/triage", headers=admin.headers)
    assert listed.json()["labels"] == {"production": 1}
    # Back to one version: the split is gone, and the history keeps both moves.
    assert (await move(client, admin, {"version": 2}, expected=1)).json()["versions"] is None
    history = await client.get(
        "/v1/prompts/triage/labels/production/history", headers=admin.headers
    )
    moves = history.json()["items"]
    assert [m["to_versions"] for m in moves] == [None, body["versions"]]
    audit = await client.get(
        "/v1/audit", headers=admin.headers, params={"action": "prompt.label.move"}
    )
    assert audit.json()["items"][-1]["after"]["versions"] == body["versions"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version": 1, **SPLIT}, "body.version"),
        ({}, "body.version"),
        ({"versions": [{"version": 1, "weight": 100}]}, "body.versions"),
        (
            {"versions": [{"version": 1, "weight": 1}, {"version": 1, "weight": 2}]},
            "body.versions",
        ),
        (
            {"versions": [{"version": 1, "weight": 0}, {"version": 2, "weight": 2}]},
            "body.versions.0.weight",
        ),
        (
            {"versions": [{"version": 1, "weight": 1}, {"version": 2, "share": 2}]},
            "body.versions.1.weight",
        ),
    ],
)
async def test_a_bad_split_names_the_field_and_moves_nothing(client, admin, body, field):
    await two_versions(client, admin)
    assert_names_field(assert_problem(await move(client, admin, body), 422), field)
    missing = await client.get("/v1/prompts/triage/labels/production", headers=admin.headers)
    assert_problem(missing, 404)


async def test_a_split_over_a_missing_version_is_404(client, admin):
    await two_versions(client, admin)
    body = {"versions": [{"version": 1, "weight": 1}, {"version": 7, "weight": 1}]}
    assert_problem(await move(client, admin, body), 404)


async def test_each_end_user_keeps_one_arm_and_the_run_records_it(app, client, admin, runner):
    await two_versions(client, admin)
    assert (await move(client, admin, SPLIT)).status_code == 200
    seen: dict[str, set[int]] = {}
    for user in range(60):
        for _ in range(2):
            response = await run(client, runner, {"variables": VARIABLES, "end_user": f"u{user}"})
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["label"] == "production"
            seen.setdefault(f"u{user}", set()).add(body["version"])
    assert all(len(versions) == 1 for versions in seen.values())
    arms = Counter(next(iter(versions)) for versions in seen.values())
    assert set(arms) == {1, 2}
    assert 15 <= arms[2] <= 45  # about half of 60 users
    await app.state.run_recorder.flush()
    runs, _ = await walk_pages(
        client,
        "/v1/runs",
        runner.headers,
        limit=100,
        params={"label": "production", "version": 2},
    )
    assert len(runs) == 2 * arms[2]
    assert {r["arm"] for r in runs} == {"2"}
    assert all("v2:" in r["messages"][0]["content"] for r in runs)


async def test_without_an_end_user_the_arm_is_random(client, admin, runner):
    await two_versions(client, admin)
    await move(client, admin, SPLIT)
    versions = Counter()
    for _ in range(40):
        versions[(await run(client, runner, {"variables": VARIABLES})).json()["version"]] += 1
    assert set(versions) == {1, 2}


async def test_a_label_on_one_version_records_no_arm(app, client, admin, runner):
    await two_versions(client, admin)
    await move(client, admin, {"version": 2})
    body = (await run(client, runner, {"variables": VARIABLES, "end_user": "u1"})).json()
    await app.state.run_recorder.flush()
    stored = await client.get(f"/v1/runs/{body['id']}", headers=runner.headers)
    assert stored.json()["arm"] is None
    assert stored.json()["version"] == 2
