"""Who may read and write rules: the `rules` scope writes rules and nothing else."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from promptlogic.tenancy.roles import ROLE_SCOPES, Role, Scope, grants
from tests.factories import make_key
from tests.helpers import assert_problem
from tests.rules.support import create_rule, patch_rule


def test_rules_is_implied_by_write_and_admin_and_implies_nothing_else():
    assert grants(frozenset({Scope.ADMIN}), Scope.RULES)
    assert grants(frozenset({Scope.WRITE}), Scope.RULES)
    assert not grants(frozenset({Scope.READ, Scope.RUN}), Scope.RULES)
    for scope in (Scope.RUN, Scope.READ, Scope.WRITE, Scope.ADMIN):
        assert not grants(frozenset({Scope.RULES}), scope), scope


def test_a_rule_author_writes_rules_reads_and_runs_but_cannot_write_prompts():
    scopes = ROLE_SCOPES[Role.RULE_AUTHOR]
    assert grants(scopes, Scope.RULES)
    assert grants(scopes, Scope.READ)
    assert grants(scopes, Scope.RUN)
    assert not grants(scopes, Scope.WRITE)
    assert not grants(scopes, Scope.ADMIN)
    assert not grants(ROLE_SCOPES[Role.VIEWER], Scope.RULES)
    assert grants(ROLE_SCOPES[Role.EDITOR], Scope.RULES)


async def test_a_read_key_reads_rules_but_cannot_write_them(
    client, session, author, reader, prompt
):
    rule = await create_rule(client, author.headers, prompt=prompt, text="Be brief.")
    url = f"/v1/rules/{rule['id']}"
    assert (await client.get("/v1/rules", headers=reader.headers)).status_code == 200
    assert (await client.get(url, headers=reader.headers)).status_code == 200
    assert (await client.get(f"{url}/history", headers=reader.headers)).status_code == 200

    refused = [
        await client.post(
            "/v1/rules", headers=reader.headers, json={"prompt": prompt, "text": "Be long."}
        ),
        await patch_rule(client, reader.headers, rule["id"], text="Be long."),
        await client.delete(url, headers=reader.headers),
        await client.post(
            "/v1/rules:reorder", headers=reader.headers, json={"prompt": prompt, "ids": []}
        ),
        # Even a body that would not validate: the scope is checked first.
        await client.post("/v1/rules", headers=reader.headers, json={"bad": True}),
    ]
    for response in refused:
        problem = assert_problem(response, 403, where=response.request.method)
        assert "`rules`" in problem["detail"]
    assert await session.scalar(text("SELECT count(*) FROM rules")) == 1
    assert await session.scalar(text("SELECT max(revision) FROM rules")) == 1


async def test_a_rules_key_manages_rules_but_cannot_change_prompts_or_labels(
    client, session, author, prompt
):
    rule = await create_rule(client, author.headers, prompt=prompt, text="Be brief.")
    assert (await patch_rule(client, author.headers, rule["id"], enabled=True)).status_code == 200
    assert (await client.get(f"/v1/rules/{rule['id']}", headers=author.headers)).status_code == 200
    assert (await client.get("/v1/rules", headers=author.headers)).status_code == 200
    history = await client.get(f"/v1/rules/{rule['id']}/history", headers=author.headers)
    assert history.status_code == 200

    refused = [
        await client.post("/v1/prompts", headers=author.headers, json={"name": "mine"}),
        await client.patch(
            f"/v1/prompts/{prompt}", headers=author.headers, json={"description": "changed"}
        ),
        await client.put(
            f"/v1/prompts/{prompt}/labels/production",
            headers=author.headers,
            json={"version": 1, "expected_version": None},
        ),
        await client.get("/v1/prompts", headers=author.headers),  # no `read` either
        await client.get("/v1/api-keys", headers=author.headers),
        await client.put(
            "/v1/limits",
            headers=author.headers,
            json={"requests_per_minute": 1, "monthly_spend_cap": None},
        ),
    ]
    for response in refused:
        assert_problem(response, 403, where=f"{response.request.method} {response.request.url}")
    assert await session.scalar(text("SELECT count(*) FROM prompts")) == 1
    deleted = await client.delete(f"/v1/rules/{rule['id']}", headers=author.headers)
    assert deleted.status_code == 204


@pytest.mark.parametrize("scopes", [["write"], ["admin"]])
async def test_write_and_admin_keys_write_rules(client, session, tenant, prompt, scopes):
    key = await make_key(session, tenant, scopes, name="maintainer")
    rule = await create_rule(client, key.headers, prompt=prompt, text="Be brief.")
    assert rule["author"] == "maintainer"


async def test_a_run_key_can_neither_read_nor_write_rules(client, session, tenant, prompt):
    runner = await make_key(session, tenant, ["run"], name="app")
    assert_problem(await client.get("/v1/rules", headers=runner.headers), 403)
    assert_problem(await client.get(f"/v1/rules/{uuid.uuid4()}", headers=runner.headers), 403)
    response = await client.post(
        "/v1/rules", headers=runner.headers, json={"prompt": prompt, "text": "x"}
    )
    assert_problem(response, 403)
