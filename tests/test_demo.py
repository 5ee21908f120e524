"""The demo tenant `make run` seeds: a login, a working key, and example logic that renders."""

import json

from sqlalchemy import func, select

from promptlogic.db.engine import commit
from promptlogic.demo import CREDENTIALS_FILE, ensure_demo
from promptlogic.demo_prompts import EXAMPLE_RULES, EXAMPLE_VARIABLES
from promptlogic.prompts.models import PromptVersion
from promptlogic.rules.models import Rule
from promptlogic.tenancy.models import User
from promptlogic.tenancy.passwords import verify_password


async def seed(session, renderer, home):
    credentials = await ensure_demo(session, home, renderer)
    await commit(session)
    return credentials


async def test_first_start_seeds_a_login_a_key_and_prompts_that_render(
    client, session, renderer, tmp_path
):
    credentials = await seed(session, renderer, tmp_path)
    saved = json.loads((tmp_path / CREDENTIALS_FILE).read_text())
    assert saved["api_key"] == credentials.api_key
    assert (tmp_path / CREDENTIALS_FILE).stat().st_mode & 0o077 == 0
    user = await session.scalar(select(User).where(User.email == credentials.email))
    assert verify_password(user.password_hash, credentials.password)

    headers = {"Authorization": f"Bearer {credentials.api_key}"}
    me = (await client.get("/v1/me", headers=headers)).json()
    assert me["tenant"]["slug"] == "demo"
    rendered = await client.post(
        "/v1/prompts/support-triage/render",
        headers=headers,
        json={"variables": {**EXAMPLE_VARIABLES, "customer_tier": "enterprise"}},
    )
    assert rendered.status_code == 200, rendered.text
    body = rendered.json()
    assert body["label"] == "production"
    assert body["versions_used"] == [
        {"prompt": "support-triage", "version": 1},
        {"prompt": "company-policy", "version": 1},
    ]
    assert "Enterprise customers get a human reply" in body["messages"][0]["content"]
    for rule in EXAMPLE_RULES:  # the example rules reach the model, below the policy
        assert f"- {rule}" in body["messages"][0]["content"]
    assert [len(b["rules"]) for b in body["bound"]] == [len(EXAMPLE_RULES)]
    assert EXAMPLE_VARIABLES["message"] in body["messages"][1]["content"]
    prompt = (await client.get("/v1/prompts/support-triage", headers=headers)).json()
    assert prompt["labels"] == {"production": 1}


async def test_a_second_start_reuses_everything(session, renderer, tmp_path):
    first = await seed(session, renderer, tmp_path)
    second = await seed(session, renderer, tmp_path)
    assert second == first
    assert await session.scalar(select(func.count()).select_from(PromptVersion)) == 3
    assert await session.scalar(select(func.count()).select_from(Rule)) == len(EXAMPLE_RULES)


async def test_a_revoked_demo_key_is_replaced_on_the_next_start(
    client, session, renderer, tmp_path
):
    first = await seed(session, renderer, tmp_path)
    headers = {"Authorization": f"Bearer {first.api_key}"}
    me = (await client.get("/v1/me", headers=headers)).json()
    assert (
        await client.delete(f"/v1/api-keys/{me['key']['id']}", headers=headers)
    ).status_code == 204
    second = await seed(session, renderer, tmp_path)
    assert second.api_key != first.api_key
    assert (
        await client.get("/v1/me", headers={"Authorization": f"Bearer {second.api_key}"})
    ).status_code == 200


async def test_the_banner_prints_a_run_that_works_offline(
    client, session, renderer, tmp_path, settings, capsys
):
    import shlex

    from promptlogic.cli.serve import _print_banner

    credentials = await seed(session, renderer, tmp_path)
    _print_banner(settings, "127.0.0.1", 8000, credentials)
    printed = capsys.readouterr().out
    assert "offline provider" in printed
    assert "OPENAI_API_KEY" in printed
    assert "POST /v1/providers" in printed
    run_line = printed.index("Run the demo prompt")
    command = printed[printed.index("curl", run_line) : printed.index("# or")]
    command = command.replace("\\\n", " ")
    words = shlex.split(command)
    pairs = [words[i + 1].split(": ", 1) for i, word in enumerate(words) if word == "-H"]
    headers = dict(pairs)
    url = next(w for w in words if w.startswith("http://localhost:8000/"))
    body = json.loads(words[words.index("-d") + 1])
    response = await client.post(
        url.removeprefix("http://localhost:8000"), headers=headers, json=body
    )
    assert response.status_code == 200, response.text
    assert response.json()["provider"] == "offline"
    assert response.json()["parsed"]["category"] in {
        "billing",
        "shipping",
        "technical",
        "account",
        "other",
    }


async def test_a_demo_rule_is_checked_by_the_offline_checker_and_changes_the_run(
    client, session, renderer, tmp_path
):
    credentials = await seed(session, renderer, tmp_path)
    headers = {"Authorization": f"Bearer {credentials.api_key}"}
    policy = await client.get("/v1/prompts/support-triage/rules-policy", headers=headers)
    assert policy.json()["checker"] == {"prompt": "rule-checker", "label": "production"}
    before = await client.post(
        "/v1/prompts/support-triage/run", headers=headers, json={"variables": EXAMPLE_VARIABLES}
    )

    added = await client.post(
        "/v1/rules",
        headers=headers,
        json={
            "prompt": "support-triage",
            "text": "Double charges are always priority urgent.",
            "enabled": True,
        },
    )

    assert added.status_code == 201, added.text
    assert added.json()["status"] == "enabled"  # the offline checker passes every rule
    after = await client.post(
        "/v1/prompts/support-triage/run", headers=headers, json={"variables": EXAMPLE_VARIABLES}
    )
    assert after.json()["version"] == before.json()["version"] == 1  # no new version
    applied = [rule["id"] for rule in after.json()["bound"][0]["rules"]]
    assert applied[-1] == added.json()["id"]
    assert after.json()["parsed"]["summary"] != before.json()["parsed"]["summary"]
