"""Promotion gates on the prompt page: an admin sets, replaces and removes a label's gate; a
bad form names each field and saves nothing; an editor sees the gates but no form."""

from __future__ import annotations

import json

from tests.evals.test_eval_runs import dataset
from tests.factories import make_key, make_tenant
from tests.runs.support import make_prompt

GOOD = {
    "label": "production",
    "dataset": "tickets",
    "evaluators": json.dumps([{"type": "contains", "value": "echo"}, {"type": "exact"}]),
    "min_pass_rate": "0.75",
    "no_regressions": "on",
}


async def gate_of(client, admin, label: str = "production"):
    return await client.get(f"/v1/prompts/triage/gates/{label}", headers=admin.headers)


async def test_an_admin_gates_a_label_from_the_prompt_page(as_owner, client, admin):
    await make_prompt(client, admin, "triage")
    await dataset(client, admin)
    page = await as_owner.client.get("/ui/prompts/triage")
    assert "No label of this prompt is gated." in page.text
    assert "Gate a label" in page.text

    saved = await as_owner.client.post(
        "/ui/prompts/triage/gates", data={"csrf_token": as_owner.csrf, **GOOD}
    )

    assert saved.status_code == 303
    assert saved.headers["location"] == "/ui/prompts/triage#gate-production"
    gate = (await gate_of(client, admin)).json()
    assert (gate["dataset"], gate["min_pass_rate"], gate["no_regressions"]) == (
        "tickets",
        0.75,
        True,
    )
    assert [spec["type"] for spec in gate["evaluators"]] == ["contains", "exact"]
    page = await as_owner.client.get("/ui/prompts/triage")
    assert 'data-gate="production"' in page.text
    assert "at least 75" in page.text
    assert "Gated production" in page.text

    replaced = await as_owner.client.post(
        "/ui/prompts/triage/gates",
        data={"csrf_token": as_owner.csrf, **GOOD, "min_pass_rate": "", "no_regressions": ""},
    )
    assert replaced.status_code == 303
    gate = (await gate_of(client, admin)).json()
    assert (gate["min_pass_rate"], gate["no_regressions"]) == (1.0, False)


async def test_a_bad_gate_names_each_field_and_saves_nothing(as_owner, client, admin):
    await make_prompt(client, admin, "triage")
    await dataset(client, admin)
    answer = await as_owner.client.post(
        "/ui/prompts/triage/gates",
        data={
            "csrf_token": as_owner.csrf,
            "label": "Not A Label",
            "dataset": "tickets",
            "evaluators": "[{'type': 'exact'}",
            "min_pass_rate": "1.5",
        },
    )
    assert answer.status_code == 422
    assert "The gate was not saved:" in answer.text
    assert "a label: lowercase letters" in answer.text
    assert "is not JSON" in answer.text
    assert "less than or equal to 1" in answer.text
    assert "[{&#39;type&#39;: &#39;exact&#39;}" in answer.text  # the form keeps what was typed

    unknown = await as_owner.client.post(
        "/ui/prompts/triage/gates",
        data={
            "csrf_token": as_owner.csrf,
            **GOOD,
            "dataset": "nope",
            "evaluators": '[{"type": "telepathy"}]',
        },
    )
    assert unknown.status_code == 422
    assert "telepathy" in unknown.text
    assert (await gate_of(client, admin)).status_code == 404


async def test_another_tenants_dataset_is_unknown(as_owner, session, client, admin):
    await make_prompt(client, admin, "triage")
    other = await make_key(session, await make_tenant(session, "globex"), ["admin"])
    await dataset(client, other, name="their-tickets")
    answer = await as_owner.client.post(
        "/ui/prompts/triage/gates",
        data={"csrf_token": as_owner.csrf, **GOOD, "dataset": "their-tickets"},
    )
    assert answer.status_code == 422
    assert "there is no dataset named `their-tickets`" in answer.text
    assert (await gate_of(client, admin)).status_code == 404


async def test_an_admin_removes_a_gate(as_owner, client, admin):
    await make_prompt(client, admin, "triage")
    await dataset(client, admin)
    await as_owner.client.post(
        "/ui/prompts/triage/gates", data={"csrf_token": as_owner.csrf, **GOOD}
    )
    removed = await as_owner.client.post(
        "/ui/prompts/triage/gates/production/delete", data={"csrf_token": as_owner.csrf}
    )
    assert removed.status_code == 303
    assert (await gate_of(client, admin)).status_code == 404
    again = await as_owner.client.post(
        "/ui/prompts/triage/gates/production/delete", data={"csrf_token": as_owner.csrf}
    )
    assert again.status_code == 404
    trail = await client.get("/v1/audit", headers=admin.headers, params={"target_type": "prompt"})
    actions = [entry["action"] for entry in trail.json()["items"]]
    assert {"prompt.gate", "prompt.gate.delete"} <= set(actions)


async def test_an_editor_sees_the_gates_but_cannot_change_them(as_editor, client, admin):
    await make_prompt(client, admin, "triage")
    await dataset(client, admin)
    await client.put(
        "/v1/prompts/triage/gates/production",
        headers=admin.headers,
        json={"dataset": "tickets", "evaluators": [{"type": "exact"}]},
    )
    page = await as_editor.client.get("/ui/prompts/triage")
    assert 'data-gate="production"' in page.text
    assert "Gate a label" not in page.text
    assert "data-remove-gate" not in page.text
    refused = await as_editor.client.post(
        "/ui/prompts/triage/gates", data={"csrf_token": as_editor.csrf, **GOOD}
    )
    assert refused.status_code == 403
    gone = await as_editor.client.post(
        "/ui/prompts/triage/gates/production/delete", data={"csrf_token": as_editor.csrf}
    )
    assert gone.status_code == 403
    assert (await gate_of(client, admin)).status_code == 200
