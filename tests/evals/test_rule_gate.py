"""A rule gated on the prompt's eval: enabling it runs the label's gate with the rule applied,
and the rule goes live only if that eval passes (the fake upstream echoes the last message)."""

from __future__ import annotations

from tests.evals.test_eval_runs import dataset
from tests.rules.support import create_rule
from tests.runs.support import make_prompt, use_fake

LISTED = [
    {"role": "user", "content": "{{ ticket }}{% for rule in rules %} / {{ rule.text }}{% endfor %}"}
]


async def gated(client, admin, fake_openai, expected: str, **gate) -> None:
    """`triage` takes its own rules; its `production` is gated on `tickets`; rules are tested
    on that gate."""
    await use_fake(client, admin, fake_openai)
    await make_prompt(
        client, admin, "triage", messages=LISTED, context=[{"name": "rules", "source": "rules"}]
    )
    await dataset(client, admin, cases=[("Hi", expected), ("Yo", expected.replace("Hi", "Yo"))])
    body = {"dataset": "tickets", "evaluators": [{"type": "exact"}], "min_pass_rate": 1.0}
    answer = await client.put(
        "/v1/prompts/triage/gates/production", headers=admin.headers, json={**body, **gate}
    )
    assert answer.status_code == 200, answer.text
    policy = await client.put(
        "/v1/prompts/triage/rules-policy",
        headers=admin.headers,
        json={"eval_gate": {"label": "production"}},
    )
    assert policy.status_code == 200, policy.text


async def test_a_rule_that_breaks_the_eval_stays_out(client, admin, fake_openai):
    await gated(client, admin, fake_openai, "echo: Hi", no_regressions=False)
    rule = await create_rule(client, admin.headers, prompt="triage", text="Be brief.", enabled=True)
    assert rule["status"] == "rejected"
    assert "passes 0% of `tickets`" in rule["check_reason"]
    evals = (await client.get("/v1/evals", headers=admin.headers)).json()["items"]
    assert len(evals) == 1
    assert evals[0]["rules"]["draft"][0]["text"] == "Be brief."
    assert evals[0]["summary"]["pass_rate"] == 0


async def test_a_rule_the_eval_expects_goes_live(client, admin, fake_openai):
    await gated(client, admin, fake_openai, "echo: Hi / Be brief.", no_regressions=False)
    rule = await create_rule(client, admin.headers, prompt="triage", text="Be brief.", enabled=True)
    assert rule["status"] == "enabled", rule["check_reason"]
    check = await client.post("/v1/rules/check", headers=admin.headers, json={"rule": rule["id"]})
    assert [c["check"] for c in check.json()["checks"]] == ["limits", "eval"]


async def test_no_regressions_needs_an_eval_of_the_live_rules_first(client, admin, fake_openai):
    await gated(client, admin, fake_openai, "echo: Hi / Be brief.")
    rule = await create_rule(client, admin.headers, prompt="triage", text="Be brief.", enabled=True)
    assert rule["status"] == "rejected"
    assert "to compare with: run the gate first" in rule["check_reason"]


async def test_a_label_without_a_gate_cannot_test_rules(client, admin, fake_openai):
    await gated(client, admin, fake_openai, "echo: Hi")
    await client.delete("/v1/prompts/triage/gates/production", headers=admin.headers)
    rule = await create_rule(client, admin.headers, prompt="triage", text="Be brief.", enabled=True)
    assert rule["status"] == "rejected"
    assert "has no gate on `production`" in rule["check_reason"]
    assert fake_openai.call_count() == 0
