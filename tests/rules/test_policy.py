"""The admins' policy per prompt: who sets it, its limits on saving, and what a run binds."""

from __future__ import annotations

from sqlalchemy import text

from promptlogic.rules.schemas import MAX_TEXT_CHARS
from tests.helpers import assert_problem
from tests.prompts.test_bindings import make_bound_prompt, render
from tests.prompts.test_rules_binding import ACCOUNT_RULES, LISTED, OWN_RULES
from tests.rules.support import create_rule, patch_rule, rule_ids

DEFAULTS = {
    "allowed": True,
    "sets": [],
    "max_rules": 50,
    "max_chars": 500,
    "policy_text": "",
    "checker": None,
    "eval_gate": None,
}


async def put_policy(client, key, prompt, **policy):
    return await client.put(f"/v1/prompts/{prompt}/rules-policy", headers=key.headers, json=policy)


async def test_a_prompt_without_a_policy_has_the_defaults(client, reader, author, prompt):
    for key in (reader, author):
        answer = await client.get(f"/v1/prompts/{prompt}/rules-policy", headers=key.headers)
        assert answer.status_code == 200, answer.text
        assert answer.json() == DEFAULTS


async def test_editors_set_the_policy_and_rule_authors_cannot(client, admin, author, prompt):
    refused = await put_policy(client, author, prompt, allowed=False)
    assert_problem(refused, 403)
    answer = await put_policy(client, admin, prompt, max_rules=3, policy_text="Be kind.")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {**DEFAULTS, "max_rules": 3, "policy_text": "Be kind."}
    read = await client.get(f"/v1/prompts/{prompt}/rules-policy", headers=author.headers)
    assert read.json()["max_rules"] == 3


async def test_a_policy_change_is_audited(client, admin, prompt, session):
    assert (await put_policy(client, admin, prompt, max_chars=100)).status_code == 200
    rows = await session.execute(
        text("SELECT action, target_id, after FROM audit_events WHERE action LIKE 'prompt.rules%'")
    )
    (action, target, after), *_ = rows.all()
    assert (action, target, after["max_chars"]) == ("prompt.rules_policy", prompt, 100)


async def test_a_bad_policy_is_refused_naming_the_field(client, admin, prompt):
    cases = {
        "max_chars": 0,
        "max_rules": 1001,
        "allowed": "yes",
        "sets": [" account-*"],
        "checker": {"prompt": "no spaces allowed"},
        "colour": "red",
    }
    for field, value in cases.items():
        answer = await put_policy(client, admin, prompt, **{field: value})
        body = assert_problem(answer, 422, where=field)
        assert any(field in error["field"] for error in body["errors"]), (field, body)
    over = await put_policy(client, admin, prompt, max_chars=MAX_TEXT_CHARS + 1)
    assert_problem(over, 422)
    read = await client.get(f"/v1/prompts/{prompt}/rules-policy", headers=admin.headers)
    assert read.json() == DEFAULTS  # nothing was saved


async def test_an_unknown_prompt_has_no_policy(client, admin):
    assert_problem(await client.get("/v1/prompts/nope/rules-policy", headers=admin.headers), 404)
    assert_problem(await put_policy(client, admin, "nope", allowed=False), 404)


async def test_a_rule_longer_than_the_policy_allows_is_refused(client, admin, author, prompt):
    await put_policy(client, admin, prompt, max_chars=20)
    for enabled in (False, True):
        answer = await client.post(
            "/v1/rules",
            headers=author.headers,
            json={"prompt": prompt, "text": "x" * 21, "enabled": enabled},
        )
        body = assert_problem(answer, 422)
        assert body["errors"][0]["field"] == "body.text"
        assert "21 characters" in body["errors"][0]["message"]
    rule = await create_rule(client, author.headers, prompt=prompt, text="x" * 20)
    longer = await patch_rule(client, author.headers, rule["id"], text="y" * 21)
    assert_problem(longer, 422)
    assert await rule_ids(client, author.headers, prompt=prompt) == [rule["id"]]


async def test_a_prompt_that_allows_no_rules_takes_none(client, admin, author, prompt):
    await put_policy(client, admin, prompt, allowed=False)
    answer = await client.post(
        "/v1/rules", headers=author.headers, json={"prompt": prompt, "text": "Be brief."}
    )
    body = assert_problem(answer, 422)
    assert body["errors"][0]["field"] == "body.prompt"
    assert "does not allow rules" in body["detail"]


async def test_a_full_scope_takes_no_new_rule(client, admin, author, prompt):
    await put_policy(client, admin, prompt, max_rules=2)
    await create_rule(client, author.headers, prompt=prompt, text="one")
    await create_rule(client, author.headers, prompt=prompt, text="two")
    answer = await client.post(
        "/v1/rules", headers=author.headers, json={"prompt": prompt, "text": "three"}
    )
    body = assert_problem(answer, 422)
    assert "already has 2 rules" in body["detail"]
    assert len(await rule_ids(client, author.headers, prompt=prompt)) == 2


async def test_a_set_is_governed_by_the_prompts_whose_patterns_name_it(client, admin, author):
    await make_bound_prompt(client, admin, context=[ACCOUNT_RULES], messages=LISTED)
    await put_policy(client, admin, "advisor", sets=["account-*"], max_chars=10)
    governed = await client.post(
        "/v1/rules", headers=author.headers, json={"set": "account-7", "text": "x" * 11}
    )
    assert_problem(governed, 422)
    other = await create_rule(client, author.headers, set="team-7", text="x" * 11)
    assert other["status"] == "draft"


async def test_a_run_binds_only_what_todays_policy_allows(client, admin):
    await make_bound_prompt(client, admin, context=[OWN_RULES], messages=LISTED)
    long_rule = "Answer in French, and always sign as the Demo Company support team."
    await create_rule(client, admin.headers, prompt="advisor", text="Be brief.", enabled=True)
    await create_rule(client, admin.headers, prompt="advisor", text=long_rule, enabled=True)
    await create_rule(client, admin.headers, prompt="advisor", text="Be kind.", enabled=True)
    everything = f"Rules:\n- Be brief.\n- {long_rule}\n- Be kind."
    assert (await render(client, admin, {})).json()["messages"][0]["content"] == everything

    await put_policy(client, admin, "advisor", max_chars=20)  # the long rule was saved before
    assert (await render(client, admin, {})).json()["messages"][0][
        "content"
    ] == "Rules:\n- Be brief.\n- Be kind."

    await put_policy(client, admin, "advisor", max_rules=1)
    assert (await render(client, admin, {})).json()["messages"][0][
        "content"
    ] == "Rules:\n- Be brief."

    await put_policy(client, admin, "advisor", allowed=False)
    answer = await render(client, admin, {})
    assert answer.json()["messages"][0]["content"] == "Rules:"
    assert answer.json()["bound"][0]["rules"] == []


async def test_a_run_binds_no_set_the_policy_does_not_take(client, admin):
    await make_bound_prompt(client, admin, context=[ACCOUNT_RULES], messages=LISTED)
    await create_rule(client, admin.headers, set="account-1", text="Be brief.", enabled=True)
    await put_policy(client, admin, "advisor", sets=["account-1*"])
    taken = await render(client, admin, {"account_id": "1"})
    assert taken.json()["messages"][0]["content"] == "Rules:\n- Be brief."
    await put_policy(client, admin, "advisor", sets=["customer-*"])
    refused = await render(client, admin, {"account_id": "1"})
    assert refused.json()["messages"][0]["content"] == "Rules:"
