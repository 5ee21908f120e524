"""Previewing a draft rule set: the same inputs run under the current rules and the draft,
side by side, with nothing saved (the fake upstream echoes the last user message)."""

from __future__ import annotations

from promptlogic.tenancy.models import Tenant
from tests.factories import make_key, make_tenant
from tests.helpers import assert_problem
from tests.prompts.test_bindings import make_bound_prompt, render
from tests.prompts.test_rules_binding import ACCOUNT_RULES, OWN_RULES
from tests.rules.support import create_rule, rule_ids
from tests.runs.support import stored, use_fake

ASKED = [
    {"role": "user", "content": "Rules:{% for rule in rules %}\n- {{ rule.text }}{% endfor %}"}
]


async def preview(client, key, **body):
    return await client.post(
        "/v1/rules/preview", headers=key.headers, json={"prompt": "advisor", "version": 1, **body}
    )


async def setup(client, admin, fake_openai, context=None) -> None:
    await use_fake(client, admin, fake_openai)
    made = await make_bound_prompt(client, admin, context=context or [OWN_RULES], messages=ASKED)
    assert made.is_success, made.text


async def test_a_new_rule_is_previewed_next_to_the_current_rules(
    client, admin, session, tenant: Tenant, fake_openai, app
):
    await setup(client, admin, fake_openai)
    live = await create_rule(
        client, admin.headers, prompt="advisor", text="Be brief.", enabled=True
    )
    author = await make_key(session, tenant, ["rules", "run"], name="author")

    answer = await preview(client, author, changes=[{"text": "Answer in French."}])

    assert answer.status_code == 200, answer.text
    current, draft = answer.json()["current"], answer.json()["draft"]
    assert current["output"] == "echo: Rules:\n- Be brief."
    assert draft["output"] == "echo: Rules:\n- Be brief.\n- Answer in French."
    assert draft["bound"][0]["rules"] == [
        {"id": live["id"], "revision": 1},
        {"id": "draft-1", "revision": 0},
    ]
    # Both are recorded runs, marked as a preview's.
    for result, which in ((current, "current"), (draft, "draft")):
        record = await stored(app, client, admin, result["id"])
        assert record["metadata"] == {"preview": which}
    # Nothing was saved: the rules and the next real render are as before.
    assert await rule_ids(client, admin.headers, prompt="advisor") == [live["id"]]
    rendered = (await render(client, admin, {})).json()["messages"][0]["content"]
    assert rendered == "Rules:\n- Be brief."


async def test_a_draft_can_replace_reorder_and_leave_out_saved_rules(client, admin, fake_openai):
    await setup(client, admin, fake_openai)
    brief = await create_rule(
        client, admin.headers, prompt="advisor", text="Be brief.", enabled=True
    )
    kind = await create_rule(client, admin.headers, prompt="advisor", text="Be kind.", enabled=True)
    draft = await create_rule(client, admin.headers, prompt="advisor", text="Use emoji.")

    answer = await preview(
        client,
        admin,
        changes=[
            {"rule": brief["id"], "enabled": False},
            {"rule": kind["id"], "text": "Be very kind."},
            {"rule": draft["id"], "priority": 0},
        ],
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["current"]["output"] == "echo: Rules:\n- Be brief.\n- Be kind."
    assert answer.json()["draft"]["output"] == "echo: Rules:\n- Use emoji.\n- Be very kind."


async def test_a_set_binding_previews_the_named_set(client, admin, fake_openai):
    await setup(client, admin, fake_openai, context=[ACCOUNT_RULES])
    await create_rule(client, admin.headers, set="account-1", text="Be brief.", enabled=True)
    await create_rule(client, admin.headers, set="account-2", text="Be loud.", enabled=True)

    answer = await preview(
        client,
        admin,
        set="account-1",
        inputs={"account_id": "1"},
        changes=[{"text": "Be kind."}],
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["draft"]["output"] == "echo: Rules:\n- Be brief.\n- Be kind."
    missing_set = await preview(client, admin, inputs={"account_id": "1"}, changes=[{"text": "x"}])
    assert assert_problem(missing_set, 422)["errors"][0]["field"] == "body.set"


async def test_bad_previews_are_refused_naming_the_field(client, admin, session, fake_openai):
    await setup(client, admin, fake_openai)
    other = await make_tenant(session, "other")
    stranger = await make_key(session, other, ["admin"])
    foreign = await create_rule(client, stranger.headers, set="s", text="Their rule.", enabled=True)
    cases = {
        "body.changes": {"changes": []},
        "body.changes[0].rule": {"changes": [{"rule": foreign["id"]}]},
        "body.changes[0]": {"changes": [{"priority": 3}]},
        "body.changes[0].text": {"changes": [{"text": "x" * 501}]},
        "body.inputs": {"inputs": [1], "changes": [{"text": "x"}]},
    }
    for field, body in cases.items():
        answer = await preview(client, admin, **body)
        errors = assert_problem(answer, 422, where=field)["errors"]
        assert any(error["field"].startswith(field) for error in errors), (field, errors)
    assert fake_openai.call_count() == 0


async def test_a_prompt_without_a_rules_binding_has_nothing_to_preview(client, admin, fake_openai):
    await use_fake(client, admin, fake_openai)
    assert (await make_bound_prompt(client, admin, context=[], messages=ASKED)).is_success
    answer = await preview(client, admin, changes=[{"text": "Be brief."}])
    assert "no `rules` binding" in assert_problem(answer, 422)["detail"]


async def test_preview_needs_the_run_and_rules_scopes(client, session, tenant, admin, fake_openai):
    await setup(client, admin, fake_openai)
    for scopes in (["rules"], ["run"], ["read"]):
        key = await make_key(session, tenant, scopes, name="-".join(scopes))
        answer = await preview(client, key, changes=[{"text": "Be brief."}])
        assert_problem(answer, 403, where=str(scopes))
    assert fake_openai.call_count() == 0
