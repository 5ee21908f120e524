"""Draft → checked → enabled: a checker prompt judges a rule against the admins' policy text,
through the normal run path (the real SDK against the fake upstream)."""

from __future__ import annotations

import json

from tests.factories import make_key, make_tenant
from tests.fakes.openai_server import Reply
from tests.helpers import assert_problem
from tests.prompts.test_bindings import make_bound_prompt, render
from tests.prompts.test_rules_binding import LISTED, OWN_RULES
from tests.rules.support import create_rule, patch_rule
from tests.runs.support import make_prompt, stored, use_fake

POLICY_TEXT = "Rules must never promise a refund."
VERDICT = {
    "type": "object",
    "properties": {"verdict": {"enum": ["pass", "fail"]}, "reason": {"type": "string"}},
    "required": ["verdict", "reason"],
}
CHECKER = {
    "messages": [
        {"role": "system", "content": "Policy: {{ policy }}"},
        {"role": "user", "content": "Rule: {{ rule }}"},
    ],
    "model": {"name": "gpt-4o-mini"},
    "response_format": VERDICT,
}


async def with_checker(client, admin, fake_openai) -> None:
    """`advisor` lists its own rules and is guarded by the `rule-checker` prompt."""
    await use_fake(client, admin, fake_openai)
    await make_prompt(client, admin, "rule-checker", **CHECKER)
    assert (await make_bound_prompt(client, admin, context=[OWN_RULES], messages=LISTED)).is_success
    answer = await client.put(
        "/v1/prompts/advisor/rules-policy",
        headers=admin.headers,
        json={"policy_text": POLICY_TEXT, "checker": {"prompt": "rule-checker"}},
    )
    assert answer.status_code == 200, answer.text


def fail(reason: str) -> Reply:
    return Reply({"verdict": "fail", "reason": reason})


PASS = Reply({"verdict": "pass", "reason": "fine"})


async def rendered_rules(client, admin) -> str:
    return (await render(client, admin, {})).json()["messages"][0]["content"]


async def test_a_draft_costs_no_check_and_is_not_live(client, admin, author, fake_openai):
    await with_checker(client, admin, fake_openai)
    draft = await create_rule(client, author.headers, prompt="advisor", text="Be brief.")
    assert (draft["status"], draft["enabled"]) == ("draft", False)
    assert fake_openai.call_count() == 0
    assert await rendered_rules(client, admin) == "Rules:"


async def test_checking_a_draft_shows_the_verdict_and_saves_nothing(
    client, admin, author, fake_openai, app
):
    await with_checker(client, admin, fake_openai)
    draft = await create_rule(client, author.headers, prompt="advisor", text="Refund everyone.")
    fake_openai.push(fail("It promises refunds."))
    answer = await client.post(
        "/v1/rules/check", headers=author.headers, json={"rule": draft["id"]}
    )
    assert answer.status_code == 200, answer.text
    verdict = answer.json()
    assert (verdict["passed"], verdict["reason"]) == (False, "It promises refunds.")
    assert [c["check"] for c in verdict["checks"]] == ["limits", "checker"]
    # The checker ran through the run path with the rule and the policy text, and was recorded.
    asked = fake_openai.last_request().body["messages"]
    assert asked == [
        {"role": "system", "content": f"Policy: {POLICY_TEXT}"},
        {"role": "user", "content": "Rule: Refund everyone."},
    ]
    run = await stored(app, client, admin, verdict["checks"][1]["run_id"])
    assert (run["prompt"], run["status"]) == ("rule-checker", "succeeded")
    unchanged = await client.get(f"/v1/rules/{draft['id']}", headers=author.headers)
    assert (unchanged.json()["status"], unchanged.json()["revision"]) == ("draft", 1)


async def test_a_rejected_rule_stays_a_draft_with_the_reason(client, admin, author, fake_openai):
    await with_checker(client, admin, fake_openai)
    fake_openai.push(fail("It promises refunds."))
    rule = await create_rule(
        client, author.headers, prompt="advisor", text="Refund everyone.", enabled=True
    )
    assert (rule["status"], rule["enabled"]) == ("rejected", False)
    assert rule["check_reason"] == "It promises refunds."
    assert await rendered_rules(client, admin) == "Rules:"

    fake_openai.push(PASS)
    fixed = await patch_rule(
        client, author.headers, rule["id"], if_match='"1"', text="Be brief.", enabled=True
    )
    assert fixed.status_code == 200, fixed.text
    assert (fixed.json()["status"], fixed.json()["check_reason"]) == ("enabled", None)
    assert await rendered_rules(client, admin) == "Rules:\n- Be brief."
    history = await client.get(f"/v1/rules/{rule['id']}/history", headers=author.headers)
    assert [(r["status"], r["check_reason"]) for r in history.json()["items"]] == [
        ("enabled", None),
        ("rejected", "It promises refunds."),
    ]


async def test_an_edit_to_a_live_rule_is_judged_again(client, admin, author, fake_openai):
    await with_checker(client, admin, fake_openai)
    fake_openai.push(PASS)
    rule = await create_rule(
        client, author.headers, prompt="advisor", text="Be brief.", enabled=True
    )
    assert rule["status"] == "enabled"
    fake_openai.push(fail("It promises refunds."))
    edited = await patch_rule(client, author.headers, rule["id"], text="Refund everyone.")
    assert (edited.json()["status"], edited.json()["enabled"]) == ("rejected", False)
    assert await rendered_rules(client, admin) == "Rules:"
    # Moving a rule is not a change the checker judges.
    calls = fake_openai.call_count()
    moved = await patch_rule(client, author.headers, rule["id"], priority=9)
    assert moved.json()["status"] == "rejected"
    assert fake_openai.call_count() == calls


async def test_a_checker_that_cannot_judge_keeps_the_rule_out(client, admin, author, fake_openai):
    await with_checker(client, admin, fake_openai)
    fake_openai.push(Reply(json.dumps({"verdict": "maybe"})), Reply("not json at all"))
    for _ in range(2):
        rule = await create_rule(
            client, author.headers, prompt="advisor", text="Be brief.", enabled=True
        )
        assert rule["status"] == "rejected"
        assert "rule-checker" in rule["check_reason"]
    assert await rendered_rules(client, admin) == "Rules:"


async def test_a_missing_checker_prompt_fails_closed(client, admin, author):
    assert (await make_bound_prompt(client, admin, context=[OWN_RULES], messages=LISTED)).is_success
    await client.put(
        "/v1/prompts/advisor/rules-policy",
        headers=admin.headers,
        json={"checker": {"prompt": "gone"}},
    )
    rule = await create_rule(
        client, author.headers, prompt="advisor", text="Be brief.", enabled=True
    )
    assert rule["status"] == "rejected"
    assert "could not run" in rule["check_reason"]


async def test_check_needs_a_text_or_a_rule_of_the_tenant(client, admin, author, prompt):
    missing = await client.post("/v1/rules/check", headers=author.headers, json={"prompt": prompt})
    assert assert_problem(missing, 422)["errors"][0]["field"] == "body.text"
    unknown = await client.post(
        "/v1/rules/check",
        headers=author.headers,
        json={"rule": "00000000-0000-4000-8000-000000000000"},
    )
    assert_problem(unknown, 404)
    passes = await client.post(
        "/v1/rules/check", headers=author.headers, json={"prompt": prompt, "text": "Be brief."}
    )
    assert passes.json() == {
        "passed": True,
        "reason": None,
        "checks": [
            {"check": "limits", "passed": True, "reason": None, "prompt": None, "run_id": None}
        ],
    }


async def test_a_rule_set_token_checks_only_its_own_set(client, admin, author, prompt):
    minted = await client.post("/v1/rules/tokens", headers=admin.headers, json={"set": "account-1"})
    token = {"Authorization": f"Bearer {minted.json()['token']}"}
    mine = await create_rule(client, admin.headers, set="account-1", text="Be brief.")
    theirs = await create_rule(client, admin.headers, set="account-2", text="Be loud.")
    own = await client.post("/v1/rules/check", headers=token, json={"rule": mine["id"]})
    assert own.json()["passed"] is True
    for body in (
        {"rule": theirs["id"]},
        {"set": "account-2", "text": "x"},
        {"prompt": prompt, "text": "x"},
    ):
        answer = await client.post("/v1/rules/check", headers=token, json=body)
        assert_problem(answer, 404, where=str(body))
    both = await client.post(
        "/v1/rules/check", headers=token, json={"rule": mine["id"], "set": "account-2"}
    )
    assert assert_problem(both, 422)["errors"][0]["field"] == "body.rule"  # never judged


async def test_another_tenants_rule_cannot_be_checked(client, admin, session):
    other = await make_tenant(session, "other")
    stranger = await make_key(session, other, ["admin"])
    theirs = await create_rule(client, stranger.headers, set="s", text="Their secret rule.")
    answer = await client.post(
        "/v1/rules/check", headers=admin.headers, json={"rule": theirs["id"]}
    )
    assert_problem(answer, 404)
    assert "Their secret rule" not in answer.text
