"""Promotion gates: a gated label refuses a version without a passing eval (409 listing what
fails), and allows it once the evals pass."""

from __future__ import annotations

from tests.evals.test_eval_runs import dataset, finish, start
from tests.factories import make_key, make_tenant
from tests.helpers import assert_problem
from tests.runs.support import make_prompt, use_fake

GATE = {"dataset": "tickets", "evaluators": [{"type": "exact"}], "min_pass_rate": 0.6}
WORSE = {
    "messages": [{"role": "user", "content": "Ticket: {{ ticket }} for {{ company }}"}],
    "model": {"name": "gpt-4o-mini"},
}
BETTER = {  # echoes exactly what every case expects but the third, as version 1 does
    "messages": [{"role": "user", "content": "{{ ticket }}"}],
    "model": {"name": "gpt-4o-mini", "temperature": 0.1},
}


async def gated(client, admin, fake_openai, **gate) -> None:
    """`triage` v1 on production, versions 2 (worse) and 3 (as good), and a gate."""
    await use_fake(client, admin, fake_openai)
    await make_prompt(client, admin, "triage")
    await dataset(client, admin)
    for version in (WORSE, BETTER):
        added = await client.post(
            "/v1/prompts/triage/versions", headers=admin.headers, json=version
        )
        assert added.status_code == 201, added.text
    answer = await client.put(
        "/v1/prompts/triage/gates/production", headers=admin.headers, json={**GATE, **gate}
    )
    assert answer.status_code == 200, answer.text


async def move(client, key, version: int, expected: int = 1):
    return await client.put(
        "/v1/prompts/triage/labels/production",
        headers=key.headers,
        json={"version": version, "expected_version": expected},
    )


async def test_a_gated_label_needs_a_finished_eval(client, admin, fake_openai):
    await gated(client, admin, fake_openai)
    refused = await move(client, admin, 3)
    body = assert_problem(refused, 409)
    fields = {error["field"] for error in body["errors"]}
    assert fields == {"gate.eval"}
    assert "version 3" in body["detail"]
    assert "version 1" in body["detail"]
    assert "gates/production:run" in body["detail"]
    label = await client.get("/v1/prompts/triage/labels/production", headers=admin.headers)
    assert label.json()["version"] == 1


async def test_the_gate_refuses_the_worse_version_and_allows_the_better(
    app, client, admin, fake_openai
):
    await gated(client, admin, fake_openai)
    for version in (1, 2, 3):
        await finish(app, client, admin, (await start(client, admin, version=version)).json()["id"])

    worse = assert_problem(await move(client, admin, 2), 409)
    assert {error["field"] for error in worse["errors"]} == {
        "gate.pass_rate",
        "gate.regressions",
    }, worse
    assert "2 cases regressed against version 1" in worse["detail"]

    allowed = await move(client, admin, 3)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["version"] == 3


async def test_running_the_gate_queues_what_the_move_lacks(app, client, admin, fake_openai):
    await gated(client, admin, fake_openai)
    first = await client.post(
        "/v1/prompts/triage/gates/production:run", headers=admin.headers, json={"version": 3}
    )
    assert first.status_code == 202, first.text
    queued = first.json()["queued"]
    assert [item["version"] for item in queued] == [1, 3]
    for item in queued:
        await finish(app, client, admin, item["eval"])
    again = await client.post(
        "/v1/prompts/triage/gates/production:run", headers=admin.headers, json={"version": 3}
    )
    assert again.json() == {
        "queued": [],
        "reused": [
            {"version": 1, "eval": queued[0]["eval"]},
            {"version": 3, "eval": queued[1]["eval"]},
        ],
    }
    assert (await move(client, admin, 3)).status_code == 200


async def test_a_changed_dataset_needs_a_new_eval(app, client, admin, fake_openai):
    await gated(client, admin, fake_openai, no_regressions=False)
    await finish(app, client, admin, (await start(client, admin, version=3)).json()["id"])
    added = await client.post(
        "/v1/datasets/tickets/cases",
        headers=admin.headers,
        json={"inputs": {"company": "Acme", "ticket": "New"}, "expected": "echo: New"},
    )
    assert added.status_code == 201, added.text
    assert_problem(await move(client, admin, 3), 409)


async def test_only_admins_set_gates(client, admin, fake_openai, session, tenant):
    await gated(client, admin, fake_openai)
    editor = await make_key(session, tenant, ["write", "run"], name="editor")
    assert_problem(
        await client.put("/v1/prompts/triage/gates/production", headers=editor.headers, json=GATE),
        403,
    )
    assert_problem(
        await client.delete("/v1/prompts/triage/gates/production", headers=editor.headers), 403
    )
    shown = await client.get("/v1/prompts/triage/gates/production", headers=editor.headers)
    assert shown.json()["dataset"] == "tickets"
    bad = await client.put(
        "/v1/prompts/triage/gates/production",
        headers=admin.headers,
        json={**GATE, "min_pass_rate": 2},
    )
    assert assert_problem(bad, 422)["errors"][0]["field"].endswith("min_pass_rate")
    missing = await client.put(
        "/v1/prompts/triage/gates/production",
        headers=admin.headers,
        json={**GATE, "dataset": "nope"},
    )
    assert_problem(missing, 404)
    removed = await client.delete("/v1/prompts/triage/gates/production", headers=admin.headers)
    assert removed.status_code == 204
    assert (await move(client, admin, 2)).status_code == 200  # no gate, no check


async def test_another_tenants_dataset_is_unknown_to_gates_and_evals(
    client, admin, fake_openai, session
):
    await gated(client, admin, fake_openai)
    other = await make_tenant(session, "other")
    stranger = await make_key(session, other, ["admin"])
    made = await client.post("/v1/datasets", headers=stranger.headers, json={"name": "theirs"})
    assert made.status_code == 201, made.text

    gate = await client.put(
        "/v1/prompts/triage/gates/production",
        headers=admin.headers,
        json={**GATE, "dataset": "theirs"},
    )
    assert_problem(gate, 404)
    assert_problem(await start(client, admin, dataset="theirs"), 404)
    shown = await client.get("/v1/prompts/triage/gates/production", headers=admin.headers)
    assert shown.json()["dataset"] == "tickets"  # unchanged
