"""The `rules` binding: tenant rules reach a prompt's templates as data, on the next run."""

from __future__ import annotations

import asyncio
import time
import uuid

from promptlogic.app import create_app
from tests.conftest import client_for, running
from tests.factories import make_key, make_tenant
from tests.helpers import assert_problem
from tests.prompts.test_bindings import make_bound_prompt, render

OWN_RULES = {"name": "rules", "source": "rules"}
ACCOUNT_RULES = {"name": "rules", "source": "rules", "set": "account-{{ account_id }}"}
LISTED = [
    {
        "role": "system",
        "content": "Rules:{% for rule in rules %}\n- {{ rule.text }}{% endfor %}",
    }
]


async def add_rule(client, key, **body) -> dict:
    answer = await client.post("/v1/rules", headers=key.headers, json={"enabled": True, **body})
    assert answer.status_code == 201, answer.text
    return answer.json()


async def test_a_prompts_own_rules_reach_its_template_as_inert_text(client, admin):
    assert (await make_bound_prompt(client, admin, context=[OWN_RULES], messages=LISTED)).is_success
    hostile = "Answer in French. {{ config }} {% for x in range(9) %}x{% endfor %}"
    rule = await add_rule(client, admin, prompt="advisor", text=hostile)

    answer = await render(client, admin, {})

    assert answer.status_code == 200, answer.text
    assert answer.json()["messages"][0]["content"] == f"Rules:\n- {hostile}"
    assert answer.json()["bound"] == [
        {
            "name": "rules",
            "source": "rules",
            "prompt": "advisor",
            "rules": [{"id": rule["id"], "revision": 1}],
        }
    ]


async def test_a_rule_set_keyed_by_a_variable_overlays_each_account(client, admin):
    await make_bound_prompt(client, admin, context=[ACCOUNT_RULES], messages=LISTED)
    await add_rule(client, admin, set="account-1", text="Be brief.")
    await add_rule(client, admin, set="account-2", text="Be formal.")

    first = await render(client, admin, {"account_id": "1"})
    second = await render(client, admin, {"account_id": "2"})
    nobody = await render(client, admin, {"account_id": "3"})

    assert first.json()["messages"][0]["content"] == "Rules:\n- Be brief."
    assert second.json()["messages"][0]["content"] == "Rules:\n- Be formal."
    assert nobody.json()["messages"][0]["content"] == "Rules:"
    assert nobody.json()["bound"][0] == {
        "name": "rules",
        "source": "rules",
        "set": "account-3",
        "rules": [],
    }


async def test_a_disabled_rule_never_reaches_a_render_and_a_change_reaches_the_next(client, admin):
    await make_bound_prompt(client, admin, context=[OWN_RULES], messages=LISTED)
    rule = await add_rule(client, admin, prompt="advisor", text="Be brief.", enabled=False)
    assert (await render(client, admin, {})).json()["messages"][0]["content"] == "Rules:"

    enabled = await client.patch(
        f"/v1/rules/{rule['id']}",
        headers={**admin.headers, "If-Match": '"1"'},
        json={"enabled": True},
    )
    assert enabled.status_code == 200, enabled.text
    after = await render(client, admin, {})
    assert after.json()["messages"][0]["content"] == "Rules:\n- Be brief."
    assert after.json()["bound"][0]["rules"] == [{"id": rule["id"], "revision": 2}]

    edited = await client.patch(
        f"/v1/rules/{rule['id']}",
        headers={**admin.headers, "If-Match": '"2"'},
        json={"text": "Be very brief."},
    )
    assert edited.status_code == 200, edited.text
    latest = await render(client, admin, {})
    assert latest.json()["messages"][0]["content"] == "Rules:\n- Be very brief."

    deleted = await client.delete(
        f"/v1/rules/{rule['id']}", headers={**admin.headers, "If-Match": '"3"'}
    )
    assert deleted.status_code == 204, deleted.text
    assert (await render(client, admin, {})).json()["messages"][0]["content"] == "Rules:"


async def test_rules_apply_in_priority_order(client, admin):
    await make_bound_prompt(client, admin, context=[OWN_RULES], messages=LISTED)
    await add_rule(client, admin, prompt="advisor", text="second", priority=20)
    await add_rule(client, admin, prompt="advisor", text="first", priority=10)
    answer = await render(client, admin, {})
    assert answer.json()["messages"][0]["content"] == "Rules:\n- first\n- second"


async def test_another_tenants_rules_never_reach_a_run(client, admin, session):
    other = await make_tenant(session, "globex")
    their_key = await make_key(session, other, ["admin"], name="globex-admin")
    await make_bound_prompt(client, their_key, context=[ACCOUNT_RULES], messages=LISTED)
    await add_rule(client, their_key, set="account-1", text="Leak the secret plan.")
    await make_bound_prompt(client, admin, context=[ACCOUNT_RULES], messages=LISTED)

    answer = await client.post(
        "/v1/prompts/advisor/run",
        headers=admin.headers,
        json={"variables": {"account_id": "1"}, "version": 1},
    )

    assert answer.status_code == 200, answer.text
    assert "secret plan" not in answer.text
    assert answer.json()["bound"][0]["rules"] == []


async def test_a_run_records_the_rule_revisions_it_applied(app, client, admin):
    await make_bound_prompt(client, admin, context=[ACCOUNT_RULES], messages=LISTED)
    rule = await add_rule(client, admin, set="account-7", text="Offer a discount.")
    answer = await client.post(
        "/v1/prompts/advisor/run",
        headers=admin.headers,
        json={"variables": {"account_id": "7"}, "version": 1},
    )
    assert answer.status_code == 200, answer.text
    await app.state.run_recorder.flush()
    stored = await client.get(f"/v1/runs/{answer.json()['id']}", headers=admin.headers)
    assert stored.json()["bound"] == [
        {
            "name": "rules",
            "source": "rules",
            "set": "account-7",
            "rules": [{"id": rule["id"], "revision": 1}],
        }
    ]
    assert "- Offer a discount." in stored.json()["messages"][0]["content"]


async def test_the_runs_list_filters_by_the_rule_applied(app, client, admin):
    await make_bound_prompt(client, admin, context=[ACCOUNT_RULES], messages=LISTED)
    rule = await add_rule(client, admin, set="account-1", text="Offer a discount.")
    ran = {}
    for account in ("1", "2"):
        answer = await client.post(
            "/v1/prompts/advisor/run",
            headers=admin.headers,
            json={"variables": {"account_id": account}, "version": 1},
        )
        assert answer.status_code == 200, answer.text
        ran[account] = answer.json()["id"]
    await app.state.run_recorder.flush()

    listed = await client.get(f"/v1/runs?rule={rule['id']}", headers=admin.headers)
    other = await client.get(f"/v1/runs?rule={uuid.uuid4()}", headers=admin.headers)
    bad = await client.get("/v1/runs?rule=not-a-uuid", headers=admin.headers)

    assert [run["id"] for run in listed.json()["items"]] == [ran["1"]]
    assert other.json()["items"] == []
    assert_problem(bad, 422)


async def test_a_rule_change_reaches_a_second_app_instance(app, client, admin):
    await make_bound_prompt(client, admin, context=[ACCOUNT_RULES], messages=LISTED)
    rule = await add_rule(client, admin, set="account-5", text="Be brief.")
    async with running(create_app(app.state.settings)) as other_app, client_for(other_app) as other:
        cached = await render(other, admin, {"account_id": "5"})
        assert cached.json()["messages"][0]["content"] == "Rules:\n- Be brief."
        edited = await client.patch(
            f"/v1/rules/{rule['id']}",
            headers={**admin.headers, "If-Match": '"1"'},
            json={"text": "Be formal."},
        )
        assert edited.status_code == 200, edited.text
        changed_at = time.perf_counter()
        while True:
            served = (await render(other, admin, {"account_id": "5"})).json()
            if served["messages"][0]["content"] == "Rules:\n- Be formal.":
                break
            assert time.perf_counter() - changed_at < 2, "the other instance keeps the old rule"
            await asyncio.sleep(0.005)
        assert served["bound"][0]["rules"] == [{"id": rule["id"], "revision": 2}]
